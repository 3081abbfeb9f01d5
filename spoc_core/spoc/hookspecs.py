"""Every hook a spoc plugin can implement, in the order a server's life calls them.

Implement a hook with ``@spoc.hookimpl`` on a function of a module or a method
of an object, and give the plugin to ``Server(plugins=[...])`` or publish it
under the entry point group ``spoc``. An implementation may accept any subset
of a hook's arguments; arguments are only ever added. Each docstring says
when the hook fires and where it runs, in one paragraph; docs/hooks.md has
the whole of each. All hooks of one server are serialised, and an
implementation that raises is logged naming the plugin and the hook, and
changes nothing else, except in the check hooks (`server_check`,
`worker_check`), which exist to refuse: what they raise propagates.
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
    "worker_recycling",
    "worker_started",
    "worker_stdio",
    "worker_stopping",
]

hookspec = pluggy.HookspecMarker("spoc")
"""Marks a hook specification of the project ``spoc``."""


# ---------------------------------------------------------------------- backends


@hookspec
def backend_register(server: Server) -> Backend | Sequence[Backend] | None:
    """Return the backends this plugin provides to `server`: one `spoc.backends.Backend`, a list, or None.

    Called once per server in `Server.start()`, before ``server_check`` and
    before any worker starts, on the thread that called it; the core's
    ``thread`` and ``process`` backends come from it too. A duplicate name or
    a result that is no `Backend` stops `start()` with a `PluginError`.
    """


@hookspec
def server_check(server: Server) -> None:
    """Check your plugin's own settings for `server` before it starts; raise to refuse them.

    Called once in `Server.start()`, after the backends are known and before
    `worker_check`, on the thread that called it. What it raises propagates
    from `start()` (``spoc run`` prints it and exits 2): raise `TypeError` or
    `ValueError` naming the setting and its value.
    """


@hookspec
def worker_check(server: Server, worker: AbstractWorker) -> None:
    """Check a worker's settings before the server starts it; raise to refuse it. It only checks.

    Called for every worker in `Server.start()` before any starts, in
    `add_worker()` for a running server, and for a restart's fresh instance,
    on the thread that made the call. What it raises propagates from that
    call with a note naming the plugin (`spoc.settings` raises messages that
    name the worker, the setting and the value). Set up what you keep for a
    worker in `worker_joined`: a checked worker may never start.
    """


# ---------------------------------------------------------------------- the server


@hookspec
def server_starting(server: Server) -> None:
    """Called when `Server.start()` begins, before any worker starts.

    Runs on the thread that called `start()`, before the server started any
    thread of its own: a ``fork`` or ``spawn`` worker inherits what it sets up
    (a ``forkserver`` one does not: use `child_starting`).
    """


@hookspec
def server_start_failed(server: Server, error: Exception) -> None:
    """Called when `Server.start()` is about to raise `error` before anything started.

    A backend nobody registered, a bad backend, or a check hook's refusal;
    runs on the thread that called `start()`, and no other server hook
    follows. For a plugin that writes the server's log somewhere of its own.
    """


@hookspec
def server_started(server: Server) -> None:
    """Called when `Server.start()` has launched every worker, on the thread that called it.

    A worker's `worker_started` may come before or after it.
    """


@hookspec
def server_reloading(server: Server, workers: tuple[AbstractWorker, ...]) -> None:
    """Called when SIGHUP during `run_forever()` begins a reload of `workers`, before the first is stopped.

    Runs on the monitor thread. Each worker is then stopped in turn and
    replaced by a fresh instance once it has ended (code is not re-imported);
    one still running `Server.shutdown_timeout` seconds after its stop is
    escalated as at a shutdown, and the reload goes on.
    """


@hookspec
def server_stopping(server: Server, reason: StopReason) -> None:
    """Called once when the server begins to shut down, before any worker is asked to stop.

    Runs on the thread that asked for the stop (the monitor for a signal).
    `reason` is ``"stop"``, ``"signal"`` or ``"workers_ended"``.
    """


@hookspec
def server_stopped(server: Server, exits: tuple[WorkerExit, ...]) -> None:
    """Called once when `Server.join_all()` has ended every worker it could, after their `worker_exited`.

    Runs on the thread that called `join_all()`; `exits` holds how each
    started worker ended, in the order they were added.
    """


# ---------------------------------------------------------------------- workers


@hookspec
def worker_joined(server: Server, worker: AbstractWorker) -> None:
    """Called once for every worker that joins `server`, after its checks and before its backend starts it.

    For each worker in `Server.start()` (after `server_starting`), a worker
    added to a running server (`add_worker()`), a replica a scale starts
    (`Server.scale`), and a restart's or a reload's fresh instance as it takes
    its predecessor's place (on the monitor thread). Set up what the plugin keeps for the worker here
    (`AbstractWorker.stash`); an exception is logged and the worker starts
    all the same.
    """


@hookspec
def worker_event(server: Server, worker: AbstractWorker, event: WorkerEvent) -> None:
    """Called for every event a worker sends, before the hook for its kind, on the monitor thread.

    For a log shipper or a tracer. Each implementation is one more call for
    every event of every worker: implement the hooks of the kinds you need
    instead where you can.
    """


@hookspec
def worker_stdio(server: Server, worker: AbstractWorker, channel: WorkerChannel) -> Mapping[int, int] | None:
    """Return the fds a worker's process is to have as its stdout (1) and stderr (2), or None.

    Called right before the ``process`` backend starts each child (another
    backend calls it through `WorkerChannel.stdio`), on the thread that starts
    it; not for thread workers. The server owns the returned fds and closes
    its copies once the process has its own; `channel.watch` reads the other
    ends on the monitor thread. The first plugin to give a number has it.
    """


@hookspec
def worker_started(server: Server, worker: AbstractWorker, event: WorkerEvent) -> None:
    """Called when a worker's ``setup()`` has completed and its ``main()`` is about to run.

    Runs on the monitor thread, after the worker's own
    ``lifecycle("startup")`` ran where it lives; `event` is the
    ``"startup"`` event.
    """


@hookspec
def worker_error(server: Server, worker: AbstractWorker, error: ErrorRecord, event: WorkerEvent) -> None:
    """Called once per failure of a worker's phase, after its own ``lifecycle("error", ...)``.

    Runs on the monitor thread; `error` is the `ErrorRecord` (type, message,
    traceback, phase). The worker goes on to its teardown.
    """


@hookspec
def worker_record(server: Server, worker: AbstractWorker, topic: str, data: dict[str, Any], event: WorkerEvent) -> None:
    """Called for each record a worker sent with ``worker.send_record(topic, **data)``.

    Runs on the monitor thread, in order with the worker's lifecycle events,
    from a thread worker or a process worker's child alike (then `data` is a
    pickled copy). Ignore topics that are not your plugin's.
    """


@hookspec
def worker_recycling(server: Server, worker: AbstractWorker, reason: str) -> None:
    """Called on the thread that called `Server.recycle_worker`, when the recycle of running `worker` begins.

    Right before the worker is asked to stop; `reason` is the recycle's, in a
    word (spoc-plugin-restart's ``"age"``, ``"jobs"``, ``"memory"``). Its end
    (``worker_exited``, outcome ``stopped`` as a rule) and its fresh
    instance's ``worker_joined`` and ``worker_started`` follow; meanwhile
    `Server.stopped_by` says ``"recycle"``. spoc-plugin-metrics counts it.
    """


@hookspec
def worker_stopping(server: Server, worker: AbstractWorker) -> None:
    """Called once when a running worker is asked to stop, by the server or by ``worker.stop()``.

    Runs on the monitor thread, for workers that had not ended yet.
    """


@hookspec
def worker_exited(server: Server, worker: AbstractWorker, exit_info: WorkerExit) -> None:
    """Called once when a worker has ended, however it ended, with its `WorkerExit`.

    Runs on the monitor thread (or the thread running `join_all()` for a
    thread that would not stop in time).
    """


# ---------------------------------------------------------------------- inside a process worker's child


@hookspec
def child_starting(worker: AbstractWorker, server_name: str, server_pid: int) -> None:
    """Called inside a process worker's child, on its main thread, before the worker's ``setup()``.

    Configure logging or metrics there for the worker's life. Only plugins
    implementing a child hook travel to children (pickled under ``spawn`` and
    ``forkserver``). An exception is logged in the child and the worker
    starts anyway.
    """


@hookspec
def child_event(worker: AbstractWorker, event: WorkerEvent) -> None:
    """Called inside a process worker's child right before it sends a lifecycle event to the server.

    Runs on the thread that sends it, for ``"startup"``, ``"error"``,
    ``"stopping"`` and ``"shutdown"`` (not records). An exception is logged in
    the child and the event is sent all the same.
    """


@hookspec
def child_stopping(worker: AbstractWorker, server_name: str, server_pid: int) -> None:
    """Called inside a process worker's child, on its main thread, after ``teardown()``.

    The last moment ``worker.send_record()`` works: flush what the plugin
    buffered in the child. Not called when the child is killed. An exception
    is logged in the child.
    """
