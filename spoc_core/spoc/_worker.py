"""AbstractWorker: the user's body, its stop flag, wait/sleep, heartbeats and context.

Where the worker *lives* (its thread, or a copy in its child) `_lifecycle`
runs its body. Where it is *supervised* (its server, or the process that
called ``start()``) each instance has one run record (`_run.WorkerRun`): its
runner, its channel, what its events said; `error`, `exit_info`, ``join()``
and ``is_alive()`` read it.
"""

from __future__ import annotations

import abc
import functools
import inspect
import logging
import math
import os
import pickle
import threading
import time
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ._errors import BackendError, ErrorRecord, Phase, SpocError, WorkerStartError
from ._events import WorkerEvent, WorkerExit, make_event
from ._latch import Latch, SignalWake
from ._run import WorkerRun
from ._stacks import format_stacks, task_stacks, thread_stack
from ._stash import Stash

if TYPE_CHECKING:
    import asyncio

__all__ = ["AbstractWorker", "check_initialised", "check_own_backend", "check_replicas"]

logger = logging.getLogger("spoc")

_ASYNC_CAPABLE = ("setup", "main", "teardown", "lifecycle")


class AbstractWorker(abc.ABC):
    """Base class of every worker: subclass `ThreadWorker` or `ProcessWorker` and write `main()`.

    The life of a worker, wherever it runs::

        setup() -> lifecycle("startup") -> main() -> teardown() -> lifecycle("shutdown")

    teardown() always runs, also when setup() or main() raised. Any exception
    fires ``lifecycle("error", exception=exc, phase=...)``, makes `exitcode`
    non-zero and is reported to the server; it never escapes the worker.

    When any of setup/main/teardown/lifecycle is a coroutine function, the whole
    life runs in one event loop created for the worker (uvloop when enabled).
    """

    backend: str = ""
    """The name of the backend that runs the worker: ``"thread"``, ``"process"``, or one a plugin registers.

    Set it on a subclass, or per worker with ``plugin_options={"backend": "ray"}``, which wins.
    """
    _lives_on_a_thread: ClassVar[bool] = False
    """Whether its whole life can run on a thread of the process that holds it (`WorkerChannel.run_life`)."""

    _RUNTIME_ATTRS: ClassVar[frozenset[str]] = frozenset(
        {
            "_init_args",
            "_stop_event",
            "_signal_wake",
            "_async_wakers",
            "_run",
            "_send",
            "_loop",
            "_body_thread",
            "_stash",
            "_job_alarms",
        }
    )

    name: str
    daemon: bool
    replicas: int = 1
    """How many copies of this worker a server runs (an int >= 1; a class attribute or the constructor's
    ``replicas=`` keyword). With N > 1 they are named ``<name>-1`` ... ``<name>-N``; `Server.scale` changes
    the count while the server runs."""
    replica: int
    """Which copy of its worker this instance is, 1-based (1 for a worker that is not replicated)."""
    restarts: int
    """How many times a supervisor restarted this worker before this instance (`Server.restart_worker`)."""
    previous_exit: WorkerExit | None
    """How the instance this one replaced ended (`Server.restart_worker`); None for a first run."""
    context: types.SimpleNamespace
    _init_args: tuple[tuple[Any, ...], dict[str, Any]]

    def __new__(cls, *args: Any, **kwargs: Any) -> AbstractWorker:
        if getattr(cls, "main", None) is AbstractWorker.main:
            raise TypeError(
                f"{cls.__name__} cannot be instantiated: it does not define main(). "
                f"A worker subclass must implement main(self) (plain or async def), "
                f"the body that runs until stop is requested."
            )
        self = super().__new__(cls)
        self._init_args = (args, kwargs)
        return self

    def __init__(
        self,
        name: str,
        *,
        daemon: bool = True,
        plugin_options: Mapping[str, Any] | None = None,
        replicas: int | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"{type(self).__name__}: name must be a non-empty str, got {name!r}; "
                f"pass it first, e.g. {type(self).__name__}('worker-1')"
            )
        if plugin_options is not None and not isinstance(plugin_options, Mapping):
            raise TypeError(
                f"{type(self).__name__} {name!r}: plugin_options must be a mapping of plugin settings, got "
                f"{type(plugin_options).__name__}: {plugin_options!r}; "
                f"e.g. plugin_options={{'restart_policy': 'always'}}"
            )
        self.name = name
        self.daemon = daemon
        self.replicas = check_replicas(self, name, type(self).replicas if replicas is None else replicas)
        self.replica = 1
        self._base_name = name
        self.restarts = 0
        self.previous_exit = None
        self._plugin_options = dict(plugin_options or {})
        if "backend" in self._plugin_options:
            self.backend = _backend_option(self, self._plugin_options["backend"])
        self.context = types.SimpleNamespace()
        self._server_name: str | None = None
        self._server_pid: int | None = None
        self._init_runtime()

    def _init_runtime(self) -> None:
        """(Re)create the state that belongs to one run and never crosses a process boundary."""
        self._running = True
        self._stop_requested = False
        self._stop_requested_at: float | None = None  # monotonic: how long it has been stopping, in messages
        self._stop_event = Latch()
        self._signal_wake: SignalWake | None = None
        self._async_wakers: list[Callable[[], None]] = []
        self._run = WorkerRun(self)  # where it is supervised
        self._send: Callable[[WorkerEvent], None] | None = None  # where it lives, while its body runs
        self._beat = False
        self._beats = 0
        self._idle = 0
        self._phase: Phase | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._body_thread: int | None = None
        self._body_exitcode: int | None = None  # what its life returned, once it has (`_lifecycle.live`)
        self._stash = Stash()
        self._jobs = 0
        self._job_alarms: list[tuple[int, Callable[[int], None]]] = []
        self._next_job_alarm: float = math.inf  # the lowest count of _job_alarms: job_done() compares only this

    @property
    def error(self) -> ErrorRecord | None:
        """The first error the worker's body reported (type, message, traceback, phase), where it is supervised;
        None while it has reported none."""
        return self._run.error

    @property
    def exit_info(self) -> WorkerExit | None:
        """How the worker ended (`WorkerExit`), where it is supervised, once it has; else None."""
        return self._run.exit_info

    @property
    def plugin_options(self) -> Mapping[str, Any]:
        """Settings for plugins, given to the constructor: ``plugin_options={"restart_policy": "always"}``.

        Each plugin documents the keys it reads (the restart plugin's
        ``restart_policy``, ``max_restarts``, ...); a key given here overrides
        the class attribute of the same name. The core reads one key itself:
        ``backend``, which names the worker's backend (`backend`). Read-only;
        a restarted worker gets the same options (they are constructor
        arguments).
        """
        return types.MappingProxyType(self._plugin_options)

    @property
    def base_name(self) -> str:
        """The name the worker was declared with, which `Server.scale` takes: a replica's name without its
        ``-<replica>`` suffix (the same as `name` for a worker that is not replicated)."""
        return self._base_name

    def _become_replica(self, replica: int, name: str) -> None:
        """Make this (unstarted) instance copy `replica` of its worker, named `name`."""
        self.replica, self.name = replica, name

    @property
    def server_name(self) -> str | None:
        """The name of the server this worker belongs to, or None before it is added to one.

        Set when a `Server` takes the worker (``add_worker``, a restart's or a
        reload's fresh instance) and readable where the worker lives too: in a
        process worker's child, and in a process a backend hosts it in.
        """
        return self._server_name

    @property
    def server_pid(self) -> int | None:
        """The pid of the process of the server this worker belongs to (see `server_name`), or None.

        With `server_name`, what is the same for every run of the worker in
        one server and differs between two copies of a service.
        """
        return self._server_pid

    @property
    def stash(self) -> Stash:
        """Plugins' storage for this worker instance, where it is supervised (a `Stash`; docs/plugins.md).

        A restart's or a reload's fresh instance starts with an empty one: keep
        what outlives a run in `Server.stash`. It never crosses to a process
        worker's child (the child has one of its own, for the child hooks).
        """
        return self._stash

    def _join_server(self, name: str, pid: int) -> None:
        """A server (`name`, in process `pid`) took this worker: `server_name` and `server_pid` say so."""
        self._server_name, self._server_pid = name, pid

    # ------------------------------------------------------------------ the user's hooks

    def setup(self) -> Any:
        """Prepare resources before main(); runs where the worker lives. May be ``async def``."""

    @abc.abstractmethod
    def main(self) -> Any:
        """The worker's body: loop ``while self.is_running`` (or ``self.wait()``). May be ``async def``."""

    def teardown(self) -> Any:
        """Release resources; runs after main(), also after a failure. May be ``async def``."""

    def lifecycle(self, event_type: str, **data: Any) -> Any:
        """Called with ``"startup"``, ``"shutdown"`` and ``"error"`` (with ``exception`` and ``phase``).

        Runs where the worker lives, in its thread or child process. May be ``async def``.
        """

    # ------------------------------------------------------------------ records for plugins

    def send_record(self, topic: str, **data: Any) -> None:
        """Send a record to the server's plugins: their ``worker_record(topic, data)`` hook.

        Call it where the worker lives (setup, main, teardown, lifecycle, any
        thread of the worker), while its body runs. The record travels over
        the worker's own event channel, so it reaches the server in order
        with the worker's lifecycle events, from a thread worker as from a
        process worker's child. It does not block on the server.

        Args:
            topic: what the record is about; plugins name theirs after
                themselves (``"metrics.inc"``) and ignore the rest.
            **data: the record's fields. From a process worker they are
                pickled, so give plain values (numbers, strings, lists, dicts).

        Raises:
            TypeError: `topic` is not a non-empty string, or `data` does not pickle.
            SpocError: the worker's body is not running (not started, or ended).
        """
        if not isinstance(topic, str) or not topic:
            raise TypeError(f"worker {self.name!r}: send_record() takes a non-empty str topic first, got {topic!r}")
        send = self._send
        if send is None:
            raise SpocError(
                f"worker {self.name!r}: send_record({topic!r}) works only while the worker's body runs "
                f"(from setup, main, teardown or lifecycle, where the worker lives)"
            )
        try:
            send(make_event(self.name, "record", topic=topic, fields=data))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise TypeError(
                f"worker {self.name!r}: send_record({topic!r}) cannot send its data to the server "
                f"({type(exc).__name__}: {exc}); give plain values (numbers, strings, lists, dicts)"
            ) from exc

    # ------------------------------------------------------------------ jobs (for recycling)

    def job_done(self) -> int:
        """Count one job done, where the worker lives; returns how many it has done (`jobs_done`).

        Call it after each job (a message handled, a request served): a
        supervisor can then replace the worker after so many jobs
        (spoc-plugin-restart's ``max_jobs``, as gunicorn's ``max_requests``).
        spoc-plugin-redis's `StreamWorker` calls it after each acknowledged
        job. Cheap (an addition and a comparison); call it from any one
        thread of the worker.
        """
        self._jobs += 1
        if self._jobs >= self._next_job_alarm:
            self._ring_job_alarms()
        return self._jobs

    @property
    def jobs_done(self) -> int:
        """How many jobs this instance has done (`job_done` calls), where it lives: 0 for a fresh instance."""
        return self._jobs

    def call_at_jobs(self, count: int, callback: Callable[[int], None]) -> None:
        """For plugins, where the worker lives: call ``callback(jobs_done)`` once, when `job_done` brings the
        count to `count` (at once when it is there already), on the thread that called `job_done`.

        spoc-plugin-restart's ``max_jobs`` asks here (in a process worker's
        child, from its ``child_starting`` hook) to be told when to recycle
        the worker. What `callback` raises propagates to the worker's body.

        Raises:
            ValueError: `count` is not an int >= 1.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"worker {self.name!r}: call_at_jobs() takes a count that is an int >= 1, got {count!r}")
        self._job_alarms.append((count, callback))
        self._next_job_alarm = min(self._next_job_alarm, count)
        if self._jobs >= count:
            self._ring_job_alarms()

    def _ring_job_alarms(self) -> None:
        due = [alarm for alarm in self._job_alarms if alarm[0] <= self._jobs]
        self._job_alarms = [alarm for alarm in self._job_alarms if alarm[0] > self._jobs]
        self._next_job_alarm = min((alarm[0] for alarm in self._job_alarms), default=math.inf)
        for _count, callback in due:
            callback(self._jobs)

    # ------------------------------------------------------------------ stopping

    @property
    def is_running(self) -> bool:
        """True until stop is requested or the worker's body has ended.

        Reading it is also a heartbeat (see `heartbeat`).
        """
        self._beat = True
        return self._running

    # ------------------------------------------------------------------ liveness (for watchdogs)

    def heartbeat(self) -> None:
        """Show a watchdog that the worker is alive, where a loop does not read `is_running`.

        Reading `is_running` and calling `wait()` or `sleep()` count as
        heartbeats too (and a worker waiting in them counts as alive), so a
        worker that loops ``while self.is_running`` needs no explicit call.
        Call it from long jobs that check nothing else, so that a watchdog
        (the restart plugin's ``watchdog_timeout``) does not take them for hung.
        Cheap: one attribute store.
        """
        self._beat = True

    @property
    def heartbeats(self) -> int:
        """For watchdogs, where the body lives: how many times the worker has shown it is alive so far.

        A watchdog keeps the count it read last: a higher one means a
        heartbeat came since (`heartbeat`, `is_running`, `wait`, `sleep`).
        A worker waiting in `wait()`/`sleep()` right now (idle, and a stop
        would wake it) counts as alive at every read. Any number of watchdogs
        may read it; reading changes nothing that another reader relies on.
        """
        if self._beat or self._idle > 0:  # heartbeats only store a flag (is_running is hot): count it here
            self._beat = False
            self._beats += 1
        return self._beats

    @property
    def lifecycle_phase(self) -> Phase | None:
        """The lifecycle phase the body is in where it lives: ``"setup"``, ``"main"``, ``"teardown"`` or None."""
        return self._phase

    @property
    def running_loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop an async worker's body runs in, while it runs (where it lives); else None."""
        return self._loop

    @property
    def stop_requested(self) -> bool:
        """Whether `stop()` has been called (by the server, a signal or anyone)."""
        return self._stop_requested

    def stop(self) -> None:
        """Ask the worker to stop: `is_running` turns False and `wait()`/`sleep()` return at once.

        Idempotent, does not block, and safe to call from any thread or from a
        signal handler. It does not wait for the worker to end: use `join()`.
        """
        self._stop_on(None)

    def _stop_on(self, signum: int | None) -> None:
        """`stop()`; with `signum` (where the body lives) for a signal from outside the server, which the
        ``"stopping"`` event names, so the server can tell a stop it asked for from one it did not."""
        first = not self._stop_requested
        if first:
            self._stop_requested = True
            self._stop_requested_at = time.monotonic()
            self._running = False
        elif signum is None:
            return
        channel = self._run.channel
        send = channel.send if channel is not None else self._send  # the server, or (in a child) the event pipe
        if send is not None and self.exit_info is None:  # for the worker_stopping hook and the outcome
            data: dict[str, Any] = {} if signum is None else {"signal": signum}
            send(make_event(self.name, "stopping", **data))  # before the body wakes: ahead of its last events
        if first:
            self._wake_local()
            self._request_stop()

    def _wake_local(self) -> None:
        self._stop_event.set()
        if self._signal_wake is not None:
            self._signal_wake.poke()
        for wake in tuple(self._async_wakers):
            try:
                wake()
            except RuntimeError:  # the sleeping loop closed in the meantime
                pass

    def _request_stop(self) -> None:
        """Carry the stop request to where the body runs: under a server, its backend does (`Backend.stop`)."""
        channel = self._run.channel
        if channel is not None:
            channel._carry_stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block for up to `timeout` seconds, returning early when stop is requested.

        Returns True when stop was requested, False when the timeout passed.
        Use it instead of ``time.sleep()`` between jobs, so a stop is immediate.
        """
        if self._stop_requested:
            return True
        self._idle += 1
        try:
            wake = self._signal_wake
            if wake is not None and wake.thread == threading.get_ident():
                return wake.wait(self._stop_event, timeout)  # the worker's own signal handlers run at once
            return self._stop_event.wait(timeout)
        finally:
            self._idle -= 1
            self._beat = True

    async def sleep(self, seconds: float) -> bool:
        """Async counterpart of `wait`: sleep `seconds`, returning at once when stop is requested.

        Returns True when stop was requested, False when the time passed.
        """
        if self._stop_requested:
            return True
        import asyncio  # loaded already: this runs in a loop (here, not at import: see `spoc._aio`)

        loop = asyncio.get_running_loop()
        woken: asyncio.Future[bool] = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(_resolve, woken, True)

        timer = loop.call_later(max(0.0, seconds), _resolve, woken, False)
        self._async_wakers.append(wake)
        self._idle += 1
        try:
            if self._stop_requested:
                return True
            return await woken
        finally:
            self._idle -= 1
            self._beat = True
            timer.cancel()
            self._async_wakers.remove(wake)

    # ------------------------------------------------------------------ running

    @abc.abstractmethod
    def start(self) -> None:
        """Start the worker's life in its own thread or process. A worker starts once."""

    @abc.abstractmethod
    def join(self, timeout: float | None = None) -> None:
        """Wait up to `timeout` seconds for the worker to end."""

    @abc.abstractmethod
    def is_alive(self) -> bool:
        """Whether the worker's thread or process is running."""

    @property
    @abc.abstractmethod
    def exitcode(self) -> int | None:
        """None while running; 0 after a clean end; non-zero after a failure;
        the negative signal number when a process worker was killed."""

    def current_stack(self) -> str | None:
        """The Python stack the worker's body is at, formatted, where it lives; else None.

        In the server's process that is a thread worker's stack (a process
        worker's body runs in its child: there, in its child, this gives it).
        For an async worker, the await chain of each task of its event loop
        follows the thread's stack: where ``main()`` is suspended is there.
        """
        ident = self._body_thread
        stack = None if ident is None else thread_stack(ident)
        loop = self._loop
        if stack is None or loop is None:
            return stack
        return stack + "".join(task_stacks(loop))

    def dump_stack(self) -> None:
        """Log the stacks the worker's body is at, whole, headed by the worker's name and pid.

        Through the ``spoc`` logger (WARNING), one record per worker, so two
        dumps never interleave: the body's thread and, for an async worker,
        each task of its event loop. A process worker's child is asked for
        them (`ProcessWorker.dump_stack`); its answer is logged when it arrives.
        ``SIGUSR1`` to a server in `Server.run_forever` does this for every worker.
        """
        ident = self._body_thread
        if ident is not None:
            self._run.log_stack(os.getpid(), format_stacks([ident], self._loop))

    @property
    def _thread_or_process(self) -> Any:
        """The runner, by the name the user guide's health monitor reads: ``worker._thread_or_process.is_alive()``."""
        return self._run.runner

    @property
    def started(self) -> bool:
        """Whether `start()` has been called."""
        return self._run.runner is not None

    @property
    def is_async(self) -> bool:
        """Whether any of setup/main/teardown/lifecycle is a coroutine function."""
        return _class_is_async(type(self))

    def fresh_instance(self) -> AbstractWorker:
        """Build a new, unstarted worker from the same constructor arguments.

        The state of this instance's run does not carry over: that is what a
        supervisor wants when it restarts a worker. A replica's fresh instance
        is the same replica, under the same name.
        """
        args, kwargs = self._init_args
        fresh = type(self)(*args, **kwargs)
        fresh._init_args = self._init_args  # the very same arguments: a fork server can rebuild it from its copy
        fresh._base_name, fresh.replica, fresh.name = self._base_name, self.replica, self.name  # a replica's own
        return fresh

    def _check_startable(self) -> None:
        if self.started:
            raise WorkerStartError(
                f"worker {self.name!r} was already started; a worker runs once. "
                f"Use worker.fresh_instance() for a new run."
            )

    # ------------------------------------------------------------------ pickling

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._RUNTIME_ATTRS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_args = ((), {})
        self._init_runtime()

    def __repr__(self) -> str:
        if not self.started:
            status = "not started"
        elif self.exit_info is not None or (self.exitcode is not None):
            status = f"exitcode={self.exitcode}"
        else:
            status = "running" if self._running else "stopping"
        return f"<{type(self).__name__} {self.name!r} {self.backend} {status}>"


@functools.cache
def _class_is_async(cls: type) -> bool:
    """Decided once per class (methods are class attributes), and before a fork, inherited by the child."""
    return any(inspect.iscoroutinefunction(getattr(cls, name)) for name in _ASYNC_CAPABLE)


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


def check_initialised(worker: AbstractWorker) -> None:
    """Raise when `worker`'s ``__init__`` did not call ``super().__init__(name)``, saying so and where.

    Checked where a worker enters spoc (`Server.add_worker`, ``start()`` on
    its own): without it, the first thing spoc reads fails with "no attribute
    'name'" from spoc's internals. (A ``__getattr__`` on the class would say
    it at any access, but would cost every attribute read of every worker:
    CPython does not specialise attribute access on such classes.)
    """
    if "name" in vars(worker):
        return
    init = type(worker).__init__
    code = getattr(init, "__code__", None)
    where = f" ({code.co_filename}, line {code.co_firstlineno})" if code is not None else ""
    raise TypeError(
        f"{type(worker).__name__}.__init__{where} does not call super().__init__(name): the worker has no name "
        f"and none of spoc's state. Call super().__init__(name) first, then set your own attributes."
    )


def _backend_option(worker: AbstractWorker, value: object) -> str:
    """``plugin_options["backend"]``, checked: the name of a backend."""
    if not isinstance(value, str) or not value:
        raise TypeError(
            f"{type(worker).__name__} {worker.name!r}: plugin_options['backend'] must be the name of a "
            f"backend (a non-empty str), got {value!r}; e.g. plugin_options={{'backend': 'ray'}}, or leave "
            f"it out to keep {type(worker).__name__}.backend ({type(worker).backend!r})"
        )
    return value


def check_own_backend(worker: AbstractWorker, own: str) -> None:
    """Before `worker.start()` outside a server: only the worker class's own backend runs without one."""
    check_initialised(worker)
    if worker.backend != own:
        raise BackendError(
            f"worker {worker.name!r} names backend {worker.backend!r}, which only a Server provides "
            f"(through its plugins); add the worker to a Server, or start it on its own with "
            f"backend {own!r}"
        )


def check_replicas(worker: AbstractWorker, name: str, replicas: object) -> int:
    """`replicas` of the worker `name` as an int >= 1; else a TypeError/ValueError naming the class, the worker
    and the value."""
    where = f"{type(worker).__name__} {name!r}"
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise TypeError(
            f"{where}: replicas must be a whole number of copies >= 1, got {type(replicas).__name__}: "
            f"{replicas!r}; e.g. replicas=4"
        )
    if replicas < 1:
        raise ValueError(
            f"{where}: replicas must be >= 1, got {replicas}; a worker runs at least once (to run none for a "
            f"while, add it and call server.scale({name!r}, 0))"
        )
    return replicas
