"""Every hook a spoc plugin can implement, in the order a server's life calls them.

Implement a hook with ``@spoc.hookimpl`` on a function of a module or a method
of an object, and give the plugin to ``Server(plugins=[...])`` or publish it
under the entry point group ``spoc`` (see docs/plugins.md). An implementation
may accept any subset of a hook's arguments; arguments are only ever added.

Where hooks run. Unless a hook says otherwise, it runs in the server's
process. Worker hooks run on the server's monitor thread, the one thread that
receives every worker's events, thread and process workers alike, in the
order each worker emitted them. Server hooks run on the thread that called
`Server.start()`, `stop()` or `join_all()`, or on the monitor thread when a
signal asked for the stop or the reload (each hook says). All hooks of one server are
serialised: no two run at the same time, so a plugin needs no locks of its
own for the state it keeps per server.

When an implementation raises, spoc logs the error once, on the ``spoc``
logger with the plugin's and the hook's names and the traceback, and goes on:
the other plugins' implementations of that hook still run, and neither the
server nor any worker is affected. The exceptions are the check hooks,
`server_check` and `worker_check`, whose purpose is to refuse a setting: what
they raise propagates. Hooks are called
through pluggy; ``@spoc.hookimpl`` isolates each implementation it marks
(hook wrappers excepted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from ._backend import Backend, WorkerChannel
    from ._errors import ErrorRecord
    from ._events import WorkerEvent, WorkerExit
    from ._server import Server, StopReason
    from ._worker import AbstractWorker

__all__ = [
    "backend_register",
    "child_event",
    "child_starting",
    "child_stopping",
    "hookspec",
    "server_check",
    "server_reloading",
    "server_start_failed",
    "server_started",
    "server_starting",
    "server_stopped",
    "server_stopping",
    "worker_check",
    "worker_error",
    "worker_event",
    "worker_exited",
    "worker_joined",
    "worker_record",
    "worker_started",
    "worker_stdio",
    "worker_stopping",
]

hookspec = pluggy.HookspecMarker("spoc")
"""Marks a hook specification of the project ``spoc``."""


# ---------------------------------------------------------------------- backends


@hookspec
def backend_register(server: Server) -> Backend | Sequence[Backend] | None:
    """Return the backends this plugin provides to `server`: one `spoc.Backend`, a list of them, or None.

    Called once per server, in `Server.start()` before any worker starts and
    before ``server_starting``, on the thread that called `start()`. The
    core's ``thread`` and ``process`` backends come from the same hook (the
    built-in plugin ``spoc.backends``). Each worker is handed to the backend
    its ``backend`` attribute names.

    :param server: the server; a backend instance belongs to it alone.

    Two plugins registering the same backend name, or a result that is not a
    `Backend`, stop `start()` with a `PluginError` naming the plugins. When an
    implementation raises, its backends are missing, and a worker naming one
    fails to start with an error listing the registered backends.
    """


@hookspec
def server_check(server: Server) -> None:
    """Check your plugin's own settings for a server before it starts; raise to refuse them.

    Called once in `Server.start()`, after the backends are known and before
    `worker_check` and anything else starts, on the thread that called
    `start()`. Like `worker_check`, what it raises propagates: raise
    `TypeError` or `ValueError` naming the setting (an argument, an
    environment variable) and its value; ``spoc run`` prints the message alone
    and exits 2, a configuration error. The return value is ignored.
    """


@hookspec
def worker_check(server: Server, worker: AbstractWorker) -> None:
    """Check a worker's settings before the server starts it; raise to refuse it.

    Called for every worker in `Server.start()`, after the backends are known
    and before any worker starts (so a refused worker leaves nothing
    running); for a worker added to a running server, in `add_worker()`; and
    for the fresh instance of a restart, in `restart_worker()`. Runs on the
    thread that called them.

    :param server: the server that is about to start the worker.
    :param worker: the worker; read its class attributes and
        ``worker.plugin_options`` for the settings your plugin takes.

    Unlike every other hook, an exception raised here is not isolated: it
    propagates from `start()`, `add_worker()` or `restart_worker()`, with a
    note naming the plugin. Raise `TypeError` or `ValueError` with a message
    that names the worker, the setting and its value, and says what to write
    instead: ``start()``, ``run_forever()`` and ``add_worker()`` raise it
    from the user's call without the frames below (spoc's and the plugin's),
    and ``spoc run`` prints the message alone and exits 2. The return value is ignored.
    """


# ---------------------------------------------------------------------- the server


@hookspec
def server_starting(server: Server) -> None:
    """Called when `Server.start()` begins, before any worker starts.

    Runs on the thread that called `start()` (or `run_forever()`), before the
    server has started any thread of its own: a ``fork`` or ``spawn`` process
    worker inherits whatever the implementation set up (environment
    variables, say); a ``forkserver`` one does not (multiprocessing's fork
    server may be older), so use `child_starting` for what must hold there.

    :param server: the server; ``server.workers`` are the workers it will start.

    The return value is ignored.
    """


@hookspec
def server_start_failed(server: Server, error: Exception) -> None:
    """Called when `Server.start()` is about to raise before anything started.

    A backend no plugin registered, a plugin's bad backend, or a check hook's
    refusal (`server_check`, `worker_check`): `error` is what `start()` raises
    next. Runs on the thread that called `start()`; no other server hook
    follows. For a plugin that writes the server's log somewhere of its own,
    so that this error reaches it too.

    :param server: the server.
    :param error: the exception `start()` raises.

    The return value is ignored.
    """


@hookspec
def server_started(server: Server) -> None:
    """Called when `Server.start()` has launched every worker.

    Runs on the thread that called `start()`. A worker may report
    `worker_started` before or after this hook.

    :param server: the server.

    The return value is ignored.
    """


@hookspec
def server_reloading(server: Server, workers: tuple[AbstractWorker, ...]) -> None:
    """Called when the server received SIGHUP during `run_forever()` and begins a reload.

    Runs on the server's monitor thread, before the first worker is stopped.
    The server then stops each of `workers` in turn and, once it has ended,
    starts a fresh instance in its place (`AbstractWorker.fresh_instance`:
    the same constructor arguments, the same ``restarts``, the old instance's
    exit as ``previous_exit``); the usual worker hooks fire for both. Code is
    not re-imported. The old instances end with the outcome ``"stopped"``;
    one still running `Server.shutdown_timeout` seconds after its stop was
    asked is escalated as at a shutdown (a process worker: its stack,
    SIGTERM, SIGKILL; a thread: named with its stack and left running, its
    fresh instance started when it ends), and the reload goes on with the
    next.

    :param server: the server.
    :param workers: the running workers that will be replaced, in order.

    The return value is ignored.
    """


@hookspec
def server_stopping(server: Server, reason: StopReason) -> None:
    """Called once when the server begins to shut down, before any worker is asked to stop.

    Runs on the thread that asked for the stop: the caller of `Server.stop()`,
    the monitor thread for a signal, or the thread running `run_forever()`
    when every worker has ended on its own.

    :param server: the server.
    :param reason: ``"stop"`` (`Server.stop()` was called), ``"signal"``
        (SIGINT or SIGTERM during `run_forever()`) or ``"workers_ended"``.

    The return value is ignored.
    """


@hookspec
def server_stopped(server: Server, exits: tuple[WorkerExit, ...]) -> None:
    """Called once when `Server.join_all()` has ended every worker it could.

    Runs on the thread that called `join_all()` (or `run_forever()`), after
    the last `worker_exited` of the workers that ended.

    :param server: the server.
    :param exits: how each started worker ended, in the order they were added
        (a thread that would not stop is there with ``forced=True``).

    The return value is ignored.
    """


# ---------------------------------------------------------------------- workers


@hookspec
def worker_joined(server: Server, worker: AbstractWorker) -> None:
    """Called when a worker joins `server`, once its checks passed and before its backend starts it.

    For every worker in `Server.start()` (after `server_starting`), for a
    worker added to a running server in `add_worker()`, and for a restart's
    or a reload's fresh instance when it takes its predecessor's place. Runs
    on the thread that made the call (the monitor's for a fresh instance); an
    exception is logged like any hook's, and the worker starts all the same.
    Where a plugin sets up what it keeps for a worker (`AbstractWorker.stash`);
    `worker_check` only checks.
    """


@hookspec
def worker_event(server: Server, worker: AbstractWorker, event: WorkerEvent) -> None:
    """Called for every event a worker sends, before the hook for its kind.

    Runs on the server's monitor thread. For a log shipper or a tracer: the
    event carries the worker's name, kind, phase, pid, thread id and clocks.
    Each implementation is one more call for every event of every worker
    (a server's stop included): a plugin that needs only some kinds
    implements the hooks for those kinds, which carry the same event.

    :param server: the server.
    :param worker: the worker, as the server holds it (for a process worker,
        the parent's copy: its state inside the child is not visible here).
    :param event: the event.

    The return value is ignored.
    """


@hookspec
def worker_stdio(server: Server, worker: AbstractWorker, channel: WorkerChannel) -> Mapping[int, int] | None:
    """Return the fds a process worker's child is to have as its stdout (1) and stderr (2), or None.

    Called in the server right before the ``process`` backend starts each
    child (its restarts included), on the thread that starts it; not for
    thread workers. The returned mapping, ``{1: fd, 2: fd}`` or either one,
    names fds open in the server (the write ends of pipes, a file): the child
    gets each at that number before anything of the worker runs there (under
    every start method, the fork server's children included), so all it
    writes to it, from ``print`` to a C library or a crash message, goes
    there. The server owns the returned fds from then on and closes its
    copies once the child has its own, so that the read end of a pipe sees
    EOF when the child (and any process it started) has ended.

    :param server: the server.
    :param worker: the worker about to start.
    :param channel: the worker's channel for this run: `WorkerChannel.watch`
        has the server's monitor thread read the other ends, in order with
        the worker's events.

    The first plugin (in the order they were registered) to give an fd number
    has it; another plugin's fd for the same number is closed, and the
    conflict is logged naming both. A result that is not a mapping of 1 or 2
    to an fd is logged, naming the plugin, and ignored.
    """


@hookspec
def worker_started(server: Server, worker: AbstractWorker, event: WorkerEvent) -> None:
    """Called when a worker's ``setup()`` has completed and its ``main()`` is about to run.

    Runs on the server's monitor thread, after the worker's own
    ``lifecycle("startup")`` ran where the worker lives.

    :param server: the server.
    :param worker: the worker.
    :param event: the ``"startup"`` event (pid, thread id, clocks).

    The return value is ignored.
    """


@hookspec
def worker_error(server: Server, worker: AbstractWorker, error: ErrorRecord, event: WorkerEvent) -> None:
    """Called when a phase of a worker raised.

    Runs on the server's monitor thread, once per failure, after the worker's
    own ``lifecycle("error", ...)``. The worker goes on to its teardown.

    :param server: the server.
    :param worker: the worker.
    :param error: the failure: exception type name, message, formatted
        traceback, phase, and the exception itself when it could be pickled
        across the process boundary (else None).
    :param event: the ``"error"`` event.

    The return value is ignored.
    """


@hookspec
def worker_record(server: Server, worker: AbstractWorker, topic: str, data: dict[str, Any], event: WorkerEvent) -> None:
    """Called for each record a worker sent with ``worker.send_record(topic, **data)``.

    Runs on the server's monitor thread, in order with that worker's
    lifecycle events: a record sent in ``main()`` arrives after
    `worker_started` and before the worker's `worker_exited`. The record
    travelled over the worker's event channel, from its thread or from its
    child process (then pickled: its values are copies).

    :param server: the server.
    :param worker: the worker that sent it.
    :param topic: the record's topic; name yours after your plugin
        (``"metrics.inc"``) and ignore topics that are not yours.
    :param data: the keyword arguments given to ``send_record``.
    :param event: the ``"record"`` event that carried it (pid, thread id, clocks).

    The return value is ignored.
    """


@hookspec
def worker_stopping(server: Server, worker: AbstractWorker) -> None:
    """Called when a running worker is asked to stop, by the server or by ``worker.stop()``.

    Runs on the server's monitor thread once per worker, for workers that had
    not ended yet.

    :param server: the server.
    :param worker: the worker.

    The return value is ignored.
    """


@hookspec
def worker_exited(server: Server, worker: AbstractWorker, exit_info: WorkerExit) -> None:
    """Called once when a worker has ended, however it ended.

    Runs on the server's monitor thread (or on the thread running
    `join_all()` for a thread that would not stop in time).

    :param server: the server.
    :param worker: the worker.
    :param exit_info: its exit code (negative: the signal that killed a process),
        its first error, whether it was asked to stop, whether spoc had to
        force it, and the one-word ``outcome`` (clean, stopped, failed, killed).

    The return value is ignored.
    """


# ---------------------------------------------------------------------- inside a process worker's child


@hookspec
def child_starting(worker: AbstractWorker, server_name: str, server_pid: int) -> None:
    """Called inside a process worker's child process, before the worker's ``setup()``.

    Runs on the child's main thread, in the child: configure logging or
    metrics there, for the worker's whole life. Only plugins that implement
    this hook are sent to the child: under ``fork`` as they are in the
    server's process; under ``spawn`` and ``forkserver`` (and the fork server)
    by pickling, so such a plugin must be a module, an entry point's object,
    or an object that pickles (the server refuses to start otherwise, naming
    it). Not called for thread workers, which live in the server's process.

    :param worker: the worker, in the child; ``worker.send_record()`` already
        works here, and its records reach `worker_record` in the server.
    :param server_name: the name of the server that started it.
    :param server_pid: the pid of that server's process (the child's parent
        may be the server's fork server): what is the same for every run of
        the worker in that server and differs between two copies of a service.

    The return value is ignored. When an implementation raises, the error is
    logged in the child (its stderr, unless logging is configured there) and
    the worker starts anyway.
    """


@hookspec
def child_event(worker: AbstractWorker, event: WorkerEvent) -> None:
    """Called inside a process worker's child right before it sends a lifecycle event to the server.

    Runs in the child, on the thread that sends the event (the body's), for
    the kinds ``"startup"``, ``"error"``, ``"stopping"`` and ``"shutdown"``;
    not for records, nor for thread workers. For a plugin that marks the
    moment in what the child writes: spoc-plugin-logging writes a marker to
    the child's stdout and stderr, so that the server writes each line the
    worker printed on the right side of the event. Plugins implementing it
    travel to children as for `child_starting`.

    :param worker: the worker, in the child.
    :param event: the event about to be sent.

    The return value is ignored. When an implementation raises, the error is
    logged in the child and the event is sent all the same.
    """


@hookspec
def child_stopping(worker: AbstractWorker, server_name: str, server_pid: int) -> None:
    """Called inside a process worker's child process, after the worker's ``teardown()``.

    Runs on the child's main thread, in the child, after ``teardown()`` and
    ``lifecycle("shutdown")`` (or after the failure that ended the worker),
    however the body ended, before the child reports its end: the last moment
    ``worker.send_record()`` works, so flush there what the plugin buffered in
    the child (batched metrics). Not called when the child is killed, nor for
    thread workers. Plugins implementing it travel to children as for
    `child_starting`.

    :param worker: the worker, in the child.
    :param server_name: the name of the server that started it.
    :param server_pid: the pid of that server's process.

    The return value is ignored. When an implementation raises, the error is
    logged in the child and the child ends as it would have.
    """
