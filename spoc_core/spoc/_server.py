"""Server: starts a set of workers, watches them, and shuts them down on time.

Shutdown, step by step: `stop()` asks every worker to stop; `join_all(timeout)`
waits for all of them against one deadline; past it, each process worker that
is still running has its stack logged, gets SIGTERM, and after a short grace
SIGKILL; each thread that is still running is named in a warning
with its stack (threads cannot be killed). `run_forever()` does all of that
when SIGINT or SIGTERM arrives, and a second signal forces it at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from types import FrameType
from typing import Literal

from ._backend import KILL_GRACE, Backend, WorkerChannel, unknown_backend, wrong_worker_type
from ._builtin_backends import BuiltinBackends
from ._closing_line import log_closing_line
from ._deadlines import check_timeout, wait_time
from ._errors import ErrorRecord, SpocError
from ._events import ServerExit, StopReason, WorkerEvent, make_event
from ._held import Held
from ._hosted import hosted_life
from ._log_extra import count, log_extra
from ._monitor import Monitor
from ._plugins import PluginError, PluginInfo, Plugins, raises_refusals_here
from ._replace import Replacements, log_not_restarted
from ._run import WorkerRun
from ._scaling import ReplicaCount, Scaling, check_count
from ._signal_meanings import STACK_ANSWER_TIMEOUT, SignalMeanings
from ._signals import SERVER_SIGNALS, SHUTDOWN_SIGNALS, handlers_installed, signal_name
from ._stash import Stash
from ._status import WorkerStatus, worker_statuses
from ._stdio import worker_stdio
from ._systemd import SystemdReports
from ._worker import AbstractWorker, check_initialised

__all__ = ["DEFAULT_SHUTDOWN_TIMEOUT", "KILL_GRACE", "Server", "ServerExit", "StopReason"]

logger = logging.getLogger("spoc")

DEFAULT_SHUTDOWN_TIMEOUT = 5.0
"""Seconds workers get to stop. With `KILL_GRACE` it fits inside the 10 s Docker
allows between SIGTERM and SIGKILL (Kubernetes allows 30 s, systemd 90 s)."""


_REAP_LIMIT = 5.0

_running_servers: list[Server] = []  # started and not closed yet, in the order they started
_running_lock = threading.Lock()


class Server:
    """Runs a set of workers as one unit: start, watch, stop, join, and handle signals.

    Construct, start, stop and join it from any thread; `run_forever()` also
    handles SIGINT and SIGTERM when it is called from the main thread.

    Args:
        name: the server's name, in log lines and hooks.
        plugins: plugins for this server (modules or objects with
            ``@spoc.hookimpl`` methods), besides those installed under the
            entry point group ``spoc``.
        disable_plugins: names of plugins not to load (an entry point's name,
            its distribution's name, or an explicit plugin's name); the
            environment variable ``SPOC_DISABLE_PLUGINS`` adds to them.
    """

    def __init__(
        self, name: str = "Server", plugins: Sequence[object] = (), disable_plugins: Iterable[str] = ()
    ) -> None:
        if isinstance(disable_plugins, str):
            raise TypeError(
                f"Server {name!r}: disable_plugins takes a list of names, got the string {disable_plugins!r}; "
                f"write disable_plugins=[{disable_plugins!r}]"
            )
        self.name = name
        self._plugins = Plugins(name, plugins, disable_plugins)
        self._plugins.add_builtin(BuiltinBackends(self._plugins, self._may_start_workers_later), BuiltinBackends.name)
        self._stopped_reported = False
        self._closing_line = False  # run_forever() logs how the server ended, before the server_stopped hooks
        self._runs: dict[str, WorkerRun] = {}  # each worker's current run, by name
        self._workers: dict[str, AbstractWorker] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._monitor: Monitor[WorkerRun] | None = None
        self._backends: dict[str, Backend] = {}
        self._backends_closed = False
        self._started = False
        self._stop_reason: StopReason | None = None
        self._failure: str | None = None
        self._signal_arrived = False
        self._signals = SignalMeanings(self)
        self._stop_began: float | None = None
        self._handling_signals = False
        self._force_requested = False
        self._running: set[str] = set()
        self._joined = False
        self._shutdown_timeout = DEFAULT_SHUTDOWN_TIMEOUT
        self._replacements = Replacements(self)
        self._held = Held(self)
        self._scaling = Scaling(self)
        self._systemd = SystemdReports(self)
        self._stash = Stash()

    def __repr__(self) -> str:
        return f"<Server {self.name!r} workers={len(self._workers)} running={len(self._running)}>"

    # ------------------------------------------------------------------ plugins

    @property
    def plugins(self) -> list[PluginInfo]:
        """The active plugins (loaded on first use): name, source, distribution, version, hooks.

        Raises:
            PluginError: an installed plugin failed to load or does not fit spoc's hooks.
        """
        return self._plugins.infos

    @property
    def stash(self) -> Stash:
        """Plugins' storage for this server, for as long as it lives (a `Stash`; docs/plugins.md)."""
        return self._stash

    def _hook(self, hook: str, **kwargs: object) -> None:
        self._plugins.call(hook, server=self, **kwargs)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The server's lock, for a path that calls hooks (or launches a worker: the plugins give its fds) while
        holding it: the plugins' lock first, the order in which a hook that calls the server takes them. The
        other order deadlocked: an ``add_worker()`` held the server's lock and waited for the plugins', held by
        a ``worker_exited`` hook that waited for the server's in ``restart_worker()``."""
        with self._plugins.lock, self._lock:
            yield

    # ------------------------------------------------------------------ workers

    @property
    def workers(self) -> tuple[AbstractWorker, ...]:
        """The workers, in the order they were added; a replicated worker's replicas together, in order."""
        with self._lock:
            return tuple(self._workers.values())

    def scale(self, name: str, count: int) -> None:
        """Run `count` replicas of the worker added as `name`, from any thread, before or while the server runs.

        Returns at once. Scaling up starts the missing replicas (named
        ``<name>-1`` ... ``<name>-<count>``) at once; scaling down stops the
        highest-numbered first, gracefully (each one's teardown runs), each
        within `shutdown_timeout` and then ended as a shutdown would end it.
        The hooks tell when each replica started or ended. `count` may be 0:
        every replica stops, the worker is kept, and `run_forever()` keeps
        running until a later `scale` brings it back or a stop comes. Before
        the server starts it sets the count it starts with (``spoc run
        --scale``).

        Raises:
            TypeError, ValueError: `count` is not an int >= 0, or no worker
                was added as `name` (or a replica's name is another worker's).
            SpocError: the server is shutting down.
        """
        count = check_count(self.name, name, count)
        with self._locked():
            self._scaling.scale(name, count)

    def replica_counts(self) -> dict[str, ReplicaCount]:
        """Each worker's desired and running count of replicas (`ReplicaCount`), by the name it was added with,
        in the order added; a worker that is not replicated wants 1 (and runs 0 once it has ended)."""
        with self._lock:
            return self._scaling.counts()

    def stopped_by(self, worker: AbstractWorker) -> Literal["reload", "recycle", "scale", "stop"] | None:
        """Why this server itself stopped `worker` while it runs, for a supervisor to leave its end alone:
        ``"reload"`` (SIGHUP, `reload`: the reload starts its fresh instance), ``"recycle"`` (`recycle_worker`:
        its fresh instance starts once it has ended), ``"scale"`` (a scale-down: it leaves the server, or a
        later scale starts it again), ``"stop"`` (`stop_worker`: it stays stopped until `start_worker`), or
        None. Said from the stop until its ``worker_exited`` hooks have run."""
        with self._lock:
            if self._scaling.stopped_by_scaling(worker):
                return "scale"
            if self._held.stops(worker):
                return "stop"
            if self._workers.get(worker.name) is worker and self._replacements.reloads(worker.name):
                return "reload"
            if self._replacements.recycles(worker):
                return "recycle"
            return None

    def recycle_worker(self, worker: AbstractWorker, reason: str) -> bool:
        """Replace a running worker by a fresh instance, gracefully: not a failure, a worker's routine renewal.

        From any thread; returns at once. The worker is stopped as at a
        shutdown (its teardown runs; a worker that has not ended within
        `shutdown_timeout` is then ended as a shutdown would end it), and once
        it has ended a fresh instance (`AbstractWorker.fresh_instance`, the same
        ``restarts``) starts in its place at once. The ``worker_recycling``
        hook fires first, with `reason`; `stopped_by` says ``"recycle"`` until
        the worker's ``worker_exited`` hooks have run, so a supervisor leaves
        its end alone. spoc-plugin-restart recycles workers past ``max_age``,
        ``max_jobs`` or ``max_memory``.

        Args:
            worker: the server's current instance of a worker.
            reason: why, in a word, for metrics' labels and logs
                (spoc-plugin-restart's: ``"age"``, ``"jobs"``, ``"memory"``).

        Returns:
            True when the recycle began; False when `worker` is not running,
            is stopping already (a reload, a scale-down, a recycle, a stop), or
            the server is shutting down.

        Raises:
            TypeError: `reason` is not a non-empty str.
        """
        if not isinstance(reason, str) or not reason:
            raise TypeError(
                f"Server {self.name!r}: recycle_worker() takes a non-empty str reason (such as 'age'), got {reason!r}"
            )
        return self._replacements.recycle(worker, reason)

    def stop_worker(self, worker: AbstractWorker) -> bool:
        """Stop one running worker gracefully and keep it stopped; the server and its other workers run on.

        From any thread; returns at once (its ``worker_exited`` hooks say
        when it ended). It is stopped as at a shutdown (its teardown runs; one
        that has not ended within `shutdown_timeout` is then ended as a
        shutdown would end it); `stopped_by` says ``"stop"`` until its
        ``worker_exited`` hooks have run, so a supervisor leaves its end
        alone. It stays stopped (`status` says ``"stopped"``) until
        `start_worker` starts it again, and `run_forever()` runs on while
        one is stopped this way (``spoc ctl stop``).

        Returns:
            True when the stop began; False when `worker` is not this
            server's running worker, is stopping already (a reload, a
            scale-down, a recycle, a stop), or the server is shutting down.
        """
        with self._lock:
            stopping = self._held.stop(worker)
        if stopping:
            logger.info(
                "stopping worker %r (stop_worker): it stays stopped until it is started again",
                worker.name,
                extra=log_extra(worker.name, server=self.name),
            )
            worker.stop()
        return stopping

    def start_worker(self, name: str) -> AbstractWorker:
        """Start the ended worker `name` again, as a fresh instance, at once: one `stop_worker` stopped, one a
        supervisor gave up on, or one that ended on its own; one whose restart waits out its delay
        (`restart_worker`) starts now.

        From any thread. The fresh instance (`AbstractWorker.fresh_instance`)
        keeps ``restarts`` (this is not a restart), has the ended one's
        `exit_info` as its ``previous_exit``, and starts as a restart's would
        (``spoc ctl start``); a pending restart's is the one its supervisor made.

        Returns the fresh instance.

        Raises:
            ValueError: no worker of this server is named `name`, or it is
                still running.
            SpocError: the server has not started, or is shutting down.
        """
        with self._locked():
            worker = self._workers.get(name)
            if worker is None:
                known = ", ".join(repr(n) for n in self._workers) or "none"
                raise ValueError(f"Server {self.name!r} has no worker named {name!r} (its workers: {known})")
            if not self._started or self._monitor is None:
                raise SpocError(f"Server {self.name!r} is not running; worker {name!r} cannot be started")
            if self._shutting_down:
                raise SpocError(f"Server {self.name!r} is shutting down; worker {name!r} was not started")
            if worker.exit_info is None:
                raise ValueError(
                    f"Server {self.name!r}: worker {name!r} is running already; stop it first, or use "
                    f"recycle_worker() to replace it"
                )
            pending = self._replacements.pending.get(name)
            if pending is not None:
                self._replacements.start_now(pending)
                return pending
            self._held.release(name)
            return self._replacements.fresh(worker, worker.restarts, 0.0, why="start")

    def reload(self) -> None:
        """Replace every running worker by a fresh instance, one after another, as SIGHUP does under
        `run_forever()`: each is stopped gracefully, and the next once the fresh one has started. From any
        thread; returns at once; `reloading` says when it is done. Nothing happens during a shutdown."""
        self._replacements.reload("was asked to reload")

    @property
    def reloading(self) -> bool:
        """Whether a reload (`reload`, SIGHUP) is under way."""
        with self._lock:
            return self._replacements.reloading

    @staticmethod
    def running_servers() -> tuple[Server, ...]:
        """The servers of this process that have started and not finished stopping, in the order they started:
        for a status page or a probe that answers for the whole process."""
        with _running_lock:
            return tuple(_running_servers)

    def monitor_answers(self, timeout: float = 1.0) -> bool:
        """Whether the server's monitor thread, which handles every event and calls every worker hook, runs a
        call within `timeout` seconds: False when it is stuck (a hook that blocks it) or not running. For a
        liveness probe; from any thread but the monitor's own."""
        monitor = self._monitor
        if monitor is None or not monitor.started or monitor._on_monitor_thread():
            return False
        answered = threading.Event()
        monitor.call_later(0.0, answered.set)
        return answered.wait(timeout)

    def status(self) -> tuple[WorkerStatus, ...]:
        """What each worker is doing now (a `WorkerStatus`: state, pid, uptime, restarts, last exit and
        error, a process's memory and CPU), in the order of `workers`: what ``spoc ctl status`` shows."""
        return worker_statuses(self)

    def worker_stack(self, worker: AbstractWorker, timeout: float = STACK_ANSWER_TIMEOUT) -> str | None:
        """The Python stacks `worker`'s body is at, logged as `AbstractWorker.dump_stack` logs them, and
        returned: a process worker's child is asked and waited for up to `timeout` seconds. None when it is not
        running, or its child did not answer in time (its Python code cannot run)."""
        answers: queue.SimpleQueue[str] = queue.SimpleQueue()
        run = worker._run
        with self._lock:
            if not worker.started or worker.exit_info is not None:
                return None
            run.stack_waiters.append(answers.put)
        worker.dump_stack()
        try:
            return answers.get(timeout=timeout)
        except queue.Empty:
            return None
        finally:
            with self._lock, contextlib.suppress(ValueError):
                run.stack_waiters.remove(answers.put)

    @raises_refusals_here
    def add_worker(self, worker: AbstractWorker) -> None:
        """Add a worker. Added to a running server, it starts at once.

        A worker with ``replicas = N`` > 1 (`AbstractWorker.replicas`) stands
        for N instances built from its constructor arguments and named
        ``<name>-1`` ... ``<name>-N``: `workers` lists them, and `scale` takes
        the name it was added with.

        Raises:
            TypeError: `worker` is not a worker.
            ValueError: a worker of that name (or of one of its replicas'
                names) is already here, or it was already started.
        """
        if not isinstance(worker, AbstractWorker):
            raise TypeError(
                f"Server {self.name!r}: add_worker() takes a worker (a ThreadWorker or ProcessWorker "
                f"subclass instance), got {type(worker).__name__}: {worker!r}"
            )
        check_initialised(worker)
        with self._locked():
            if worker.started:
                raise ValueError(
                    f"Server {self.name!r}: worker {worker.name!r} was already started; add workers "
                    f"before starting them (use worker.fresh_instance() for a new run)"
                )
            if self._stop_reason is not None:
                raise SpocError(f"Server {self.name!r} is shutting down; worker {worker.name!r} was not added")
            instances = self._scaling.declare(worker)
            if self._started:
                try:
                    for instance in instances:
                        self._backend_for(instance)
                        self._plugins.check("worker_check", server=self, worker=instance)
                except BaseException:  # refused: as if it had never been added
                    self._scaling.forget(worker.base_name)
                    raise
            for instance in instances:
                self._workers[instance.name] = instance
            if self._started:
                for instance in instances:
                    self._hook("worker_joined", worker=instance)
                    self._start_worker(instance)

    # ------------------------------------------------------------------ starting

    @raises_refusals_here
    def start(self) -> None:
        """Start every worker, each on the backend it names.

        Before the server starts any thread, each backend prepares, in the
        order the plugins registered them, the core's first: the ``process``
        backend forks ``fork`` workers directly when the program is
        single-threaded at that moment (the one time forking this process is
        safe), and, when one will be needed, the server's fork server, which
        makes the ``spawn`` workers and any ``fork`` worker started later.
        Then the remaining workers start, in the order they were added.

        Raises:
            PluginError: a plugin failed to load, or registered a bad backend.
            BackendError: a worker names a backend no plugin registered, or
                one that cannot run it; no worker has been started then.
            Exception: what a plugin's ``server_check`` raised for its own
                settings, or its ``worker_check`` for a worker whose settings
                it refuses; no worker has been started then.
        """
        with self._locked():
            if self._started:
                raise SpocError(f"Server {self.name!r} was already started; a server runs once")
            self._plugins.load()
            pending = list(self._workers.values())
            try:
                backends = self._registered_backends()
                for worker in pending:
                    self._backend_for(worker, backends)
                self._plugins.check("server_check", server=self)
                for worker in pending:
                    self._plugins.check("worker_check", server=self, worker=worker)
            except Exception as exc:
                self._hook("server_start_failed", error=exc)
                raise
            self._backends = backends
            self._started = True
            monitor = self._ensure_monitor()
            with _running_lock:
                _running_servers.append(self)
        self._hook("server_starting")
        for worker in pending:
            self._hook("worker_joined", worker=worker)
        logger.info(
            "server %r starting %s", self.name, count(len(pending), "worker"), extra=log_extra(server=self.name)
        )
        for backend in backends.values():  # even with no worker yet: one may be added later
            backend.prepare([w for w in pending if w.backend == backend.name], self._start_worker)
        monitor.start()
        self._systemd.started()
        for worker in pending:
            if not worker.started and not self._start_worker(worker):
                break
        self._systemd.changed()  # READY=1 at once when no worker has a setup to wait for
        self._hook("server_started")

    def _registered_backends(self) -> dict[str, Backend]:
        backends: dict[str, Backend] = {}
        owners: dict[str, str] = {}
        for plugin, result in self._plugins.collect("backend_register", server=self):
            single = isinstance(result, Backend | str) or not isinstance(result, Sequence)
            for backend in [result] if single else result:
                if not isinstance(backend, Backend) or not backend.name:
                    raise PluginError(
                        f"spoc plugin {plugin!r}: backend_register returned {backend!r}; return spoc.Backend "
                        f"instances with a non-empty `name` (or a list of them, or None)"
                    )
                if backend.name in backends:
                    raise PluginError(
                        f"backend {backend.name!r} is registered by both spoc plugin {owners[backend.name]!r} "
                        f"and {plugin!r}; block one of them or rename its backend"
                    )
                backends[backend.name] = backend
                owners[backend.name] = plugin
        return backends

    def _backend_for(self, worker: AbstractWorker, backends: dict[str, Backend] | None = None) -> Backend:
        registered = self._backends if backends is None else backends
        backend = registered.get(worker.backend)
        if backend is None:
            raise unknown_backend(worker, self, list(registered))
        if not isinstance(worker, backend.worker_type):
            raise wrong_worker_type(worker, self, backend)
        return backend

    @property
    def backends(self) -> tuple[str, ...]:
        """The names of the backends registered when the server started (empty before)."""
        return tuple(self._backends)

    @property
    def shutdown_timeout(self) -> float:
        """Seconds workers get to stop: `run_forever`'s ``shutdown_timeout`` (default `DEFAULT_SHUTDOWN_TIMEOUT`)."""
        return self._shutdown_timeout

    def _ensure_monitor(self) -> Monitor[WorkerRun]:
        with self._lock:
            if self._monitor is None:
                self._monitor = Monitor(self._on_event, self._signals.handle, f"spoc-monitor:{self.name}")
            return self._monitor

    @property
    def _shutting_down(self) -> bool:
        """Whether a stop was requested or a signal arrived: no worker starts or restarts from then on."""
        return self._stop_reason is not None or self._signal_arrived

    @property
    def shutting_down(self) -> bool:
        """Whether the server is shutting down (`stop()` was called, or SIGINT or SIGTERM arrived): no worker
        starts or restarts from then on. A readiness probe says not ready."""
        return self._shutting_down

    def _start_worker(self, worker: AbstractWorker, report_failure: bool = False) -> bool:
        """Launch one worker on its backend; False when the server is stopping (start no more).

        A launch that fails raises, or with `report_failure` (a restart, a reload: no caller to raise to) ends
        the worker as failed in setup, so that its ``worker_exited`` tells a supervisor, which counts it as any
        other failure.
        """
        with self._locked():
            if self._shutting_down:
                return False
            backend = self._backend_for(worker)
            worker._check_startable()
            monitor = self._ensure_monitor()
            run = self._runs[worker.name] = worker._run
            run.backend = backend
            run.launched_at = time.time()
            self._held.release(worker.name)
            channel = WorkerChannel(
                worker, monitor.sender(run), watch=monitor.watch, unwatch=monitor.unwatch, backend=backend
            )
            channel._hosted_life = functools.partial(hosted_life, worker, self.name, self._plugins.for_children)
            channel._stdio = functools.partial(worker_stdio, self._plugins, self, channel)
            self._running.add(worker.name)
            try:
                runner = backend.launch(worker, channel)
            except Exception as exc:
                if not report_failure:
                    self._running.discard(worker.name)
                    raise
                run.channel = channel
                _report_start_failure(channel, exc)
                return True
            except BaseException:
                self._running.discard(worker.name)
                raise
            if run.runner is None:  # the built-in backends set it before the body runs; any other's is set here
                run.runner = runner
            run.channel = channel
            if worker.stop_requested:  # asked while it was launching: carry it there now
                channel._carry_stop()
            return True

    # ------------------------------------------------------------------ restarting (for supervisors)

    def _may_start_workers_later(self) -> bool:
        """Whether workers may start after `start()` (a reload under `run_forever()`, a plugin's restarts): the
        ``process`` backend then forks its fork server at start."""
        return self._handling_signals or any(info.source != "builtin" for info in self._plugins.infos)

    def restart_worker(self, worker: AbstractWorker, delay: float = 0.0) -> AbstractWorker | None:
        """Replace an ended worker with a fresh instance and start it `delay` seconds from now.

        For supervisors: call it from a hook such as ``worker_exited``. The
        fresh instance is built by `AbstractWorker.fresh_instance` (the same
        constructor arguments; nothing of the ended run carries over), has
        ``restarts`` one more than `worker`'s and `worker`'s `exit_info` as its
        ``previous_exit``, and takes its place in `workers`
        under the same name when it starts. Its hooks fire like any worker's;
        one its backend cannot start ends ``failed`` in setup, so that its
        ``worker_exited`` tells the supervisor.
        The delay runs on the server's monitor thread (no sleeping thread);
        `run_forever()` does not end while a restart is pending. A restarted
        ``fork`` worker comes from the server's fork server, which the
        ``process`` backend forks at start whenever a plugin is active (or
        under `run_forever()`).

        Returns the fresh instance, or None when the server is shutting down
        (a worker is never restarted during shutdown, nor when the delay ends
        after shutdown began), a reload or a recycle stopped `worker` (it starts
        its fresh instance: one it had to end past the deadline, say), or a
        scale-down did (`stopped_by`).

        Raises:
            ValueError: `worker` is not this server's current worker of that
                name, is still running, or already has a restart pending.
            SpocError: the server has not started.
        """
        with self._locked():
            if self._workers.get(worker.name) is not worker:
                raise ValueError(f"Server {self.name!r}: {worker!r} is not this server's worker {worker.name!r}")
            if not self._started or self._monitor is None:
                raise SpocError(f"Server {self.name!r} is not running; worker {worker.name!r} cannot be restarted")
            if worker.exit_info is None:
                raise ValueError(
                    f"Server {self.name!r}: worker {worker.name!r} is still running; restart it once it has "
                    f"ended (from the worker_exited hook)"
                )
            if worker.name in self._replacements.pending:
                raise ValueError(f"Server {self.name!r}: worker {worker.name!r} already has a restart pending")
            if self._shutting_down:
                log_not_restarted(self, worker.name)
                return None
            if self._replacements.reloads(worker.name) or self._replacements.recycles(worker):
                logger.info(
                    "worker %r is not restarted: the reload or recycle that stopped it starts its fresh instance",
                    worker.name,
                    extra=log_extra(worker.name, server=self.name),
                )
                return None
            if self._scaling.stopped_by_scaling(worker):
                logger.info(
                    "worker %r is not restarted: it was scaled down",
                    worker.name,
                    extra=log_extra(worker.name, server=self.name),
                )
                return None
            fresh = self._replacements.fresh(worker, worker.restarts + 1, delay)
        return fresh

    def _running_workers(self) -> list[AbstractWorker]:
        """The workers running now, in the order they were added (under the lock)."""
        return [w for w in self._workers.values() if w.name in self._running and w.exit_info is None]

    # ------------------------------------------------------------------ events (monitor thread)

    def _on_event(self, run: WorkerRun, event: WorkerEvent) -> None:
        worker = run.worker
        kind = event.kind
        implemented = self._plugins.implemented
        if kind == "record":  # the most frequent: a plugin's own, and no state of the server's to keep
            if "worker_event" in implemented:
                self._hook("worker_event", worker=worker, event=event)
            if "worker_record" in implemented:
                data = event.data
                self._hook("worker_record", worker=worker, topic=data["topic"], data=data["fields"], event=event)
            return
        if kind == "exit" and run.stop_signal in (None, "SIGTERM") and not worker._stop_requested:
            self._hear_own_copy(signal.SIGTERM)  # None too: a child whose worker closed its pipes tells nothing
        run.receive(event)
        if "worker_event" in implemented:
            self._hook("worker_event", worker=worker, event=event)
        if kind == "startup":
            self._hook("worker_started", worker=worker, event=event)
            self._replacements.started(worker)
            self._systemd.changed()
        elif kind == "error" and event.error is not None:
            self._hook("worker_error", worker=worker, error=event.error, event=event)
        elif kind == "stopping" and worker.exit_info is None and not run.stopping_reported:
            run.stopping_reported = True  # once: the child of a process worker tells it too
            self._hook("worker_stopping", worker=worker)
        elif kind == "exit":
            self._worker_ended(run)  # the body's last act, or its backend's word that it ended

    def _hear_own_copy(self, signum: int) -> None:
        """A process worker ended by `signum` from outside the server, or ended without a word of why (its worker
        closed the pipes it would have said it on): if the server has its own copy on the way
        (a stop sent to the whole process group: ``kill -TERM -PGID``, systemd's ``KillMode=control-group``),
        act on it now, so that the worker ends ``stopped`` by the service's stop, not ``killed`` by an outsider.

        Correctness: a child with a short teardown may end before the server has handled its copy: the copy is
        then in the wake-up pipe (caught, not read yet), or still pending for the process (no thread that
        takes it has run since it was sent, on a loaded machine). Taken here (`signal.sigtimedwait`), a
        pending one is acted on once.
        """
        monitor = self._monitor
        if not self._handling_signals or monitor is None or not monitor._on_monitor_thread():
            return
        monitor.read_signals_now()  # caught by the main thread's handler, not read yet
        with contextlib.suppress(OSError, ValueError):  # sigtimedwait: Linux and most Unixes
            if signal.sigtimedwait([signum], 0) is not None:  # sent, not caught yet: this thread takes it
                self._signal_arrived = True
                self._signals.handle(signum)

    def _report_exit(self, run: WorkerRun) -> None:
        worker, info = run.worker, run.worker.exit_info
        with self._lock:
            if info is None or run.exit_reported:
                return
            run.exit_reported = True
        self._hook("worker_exited", worker=worker, exit_info=info)

    def _worker_ended(self, run: WorkerRun) -> None:
        worker = run.worker
        self._report_exit(run)
        self._scaling.worker_ended(worker)
        self._replacements.worker_ended(worker)
        self._held.worker_ended(worker)
        with self._lock:
            run.exit_handled = True
        self._systemd.changed()
        with self._lock:
            if self._runs.get(worker.name) is run:  # not a new replica a scale started in its place just now
                self._running.discard(worker.name)
            self._changed.notify_all()
            straggler_done = self._joined and not self._running
        if straggler_done:  # the last thread join_all gave up on has ended after all
            self._close_when_idle()

    def notify_systemd(self) -> bool:
        """Tell systemd how this server is doing, when it runs as a ``Type=notify`` unit (``NOTIFY_SOCKET``).

        `run_forever()` (and so ``spoc run``) calls it; a program that calls
        `start()` itself calls it first, for: ``READY=1`` once every worker
        started, ``STATUS=``, ``RELOADING=1``/``READY=1`` around a reload,
        ``STOPPING=1`` and ``EXTEND_TIMEOUT_USEC=`` during a shutdown, and
        ``WATCHDOG=1`` from the monitor thread with ``WatchdogSec=``
        (docs/deployment.md). It takes ``NOTIFY_SOCKET``, ``WATCHDOG_USEC``
        and ``WATCHDOG_PID`` out of the environment, so that workers' children
        do not inherit them. Returns whether systemd listens (False without
        ``NOTIFY_SOCKET``: nothing is ever sent then).
        """
        with self._lock:
            listening = self._systemd.enable()
            started = self._started and self._monitor is not None
        if listening and started:  # asked after start(): begin now
            self._systemd.started()
            self._systemd.changed()
        return listening

    @property
    def signals_received(self) -> tuple[str, ...]:
        """The shutdown signals `run_forever()` received, by name (``"SIGTERM"``), in the order they came.

        The first asked the server to stop; a further one forced the shutdown
        when it came `REPEAT_WINDOW` seconds or more after the first.
        """
        return tuple(signal_name(signum) for signum in self._signals.received)

    def _note_signal(self, signum: int, frame: FrameType | None) -> None:
        """run_forever's Python-level handler: only a flag, so start() starts no further worker after a stop signal.

        The signal itself reaches the monitor through the wakeup fd (`SignalMeanings.handle`).
        """
        if signum in SHUTDOWN_SIGNALS:
            self._signal_arrived = True

    def _seconds_since_stop(self) -> float:
        """Seconds since the first stop request (0 before one)."""
        began = self._stop_began
        return 0.0 if began is None else time.monotonic() - began

    # ------------------------------------------------------------------ stopping

    def stop(self, failure: str | None = None) -> None:
        """Ask every worker to stop. Returns at once; `join_all()` waits. Idempotent.

        Process workers (on any backend) are asked first, then thread workers,
        each in the order they were added.

        Args:
            failure: why the server gives up, for a supervisor that can no
                longer keep its workers running: `run_forever()`'s `ServerExit`
                then carries it and is not ok (exit code 1). The first one given counts.
        """
        if failure is not None:
            with self._lock:
                if self._failure is None:
                    self._failure = failure
                    logger.error("server %r gives up: %s", self.name, failure, extra=log_extra(server=self.name))
        self._request_stop("stop")

    def kill_worker(self, worker: AbstractWorker, reason: str | None = None) -> bool:
        """End a running worker at once, for a watchdog that found it hung: SIGKILL for a process worker.

        The worker's end is reported as any other (outcome ``killed``); the
        log line says `reason` (who asked, and why: "the watchdog: no heartbeat
        for 12.0s"). Returns False when its backend cannot kill it (a thread)
        or it is not running.
        """
        with self._lock:
            run = self._runs.get(worker.name)
            if run is None or run.worker is not worker or worker.name not in self._running:
                return False
        logger.warning(
            "server %r kills worker %r%s",
            self.name,
            worker.name,
            "" if reason is None else f": {reason}",
            extra=log_extra(worker.name, server=self.name),
        )
        return self._end(run, "kill")

    def _request_stop(self, reason: StopReason) -> None:
        with self._lock:
            first = self._stop_reason is None
            if first:
                self._stop_reason = reason
                self._stop_began = time.monotonic()
            started = [w for w in self._workers.values() if w.started]
        if first:
            self._systemd.stopping()
            self._hook("server_stopping", reason=reason)
            self._each_backend(list(self._backends.values()), "stopping")  # no launch from now on: _shutting_down
        with self._lock:  # only now: a waiter woken earlier could report server_stopped before server_stopping
            self._changed.notify_all()
        # The workers whose bodies run elsewhere first: their stop crosses a process boundary and their
        # teardown begins only when it arrives (behind 100 thread workers, a child heard of the stop 14 ms
        # after it began; first, after 5 ms, and stop() returns in 7.7 ms instead of 16.6 ms).
        for worker in sorted(started, key=lambda worker: worker._lives_on_a_thread):
            worker.stop()

    def _force(self) -> None:
        """A second signal: kill every worker that can be killed, before join_all() looks at what is left."""
        with self._lock:
            self._force_requested = True
            for run in [self._runs[name] for name in self._running]:
                run.killed_on_force = self._end(run, "kill")
            self._changed.notify_all()

    def _end(self, run: WorkerRun, how: Literal["terminate", "kill"]) -> bool:
        """Have `run`'s backend terminate or kill it; whether it can. Marked forced first: its exit may come at once."""
        forced, run.forced = run.forced, True
        ending = getattr(run.backend, how)(run.worker)
        if not ending:
            run.forced = forced
        return bool(ending)

    def join_all(self, timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT) -> list[AbstractWorker]:
        """Wait for every worker to end, all against one deadline `timeout` seconds away.

        Past the deadline, a process worker still running has its Python stack
        logged (the ``spoc`` logger), gets SIGTERM and, after `KILL_GRACE` seconds, SIGKILL;
        a thread still running is named in a warning with its stack.

        `timeout` is a number of seconds (0: do not wait), or None or
        ``math.inf`` for no limit.

        Returns the workers that did not stop by the deadline (empty when all did).

        Raises:
            TypeError, ValueError: `timeout` is not a number of seconds >= 0 or None.
        """
        timeout = check_timeout(timeout, f"Server {self.name!r}: join_all()", "timeout", zero=True)
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._running and not self._force_requested:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(wait_time(remaining))
            late = [self._runs[name] for name in self._running]
        if late:
            self._escalate(late)
        with self._lock:
            self._joined = self._started
            report = self._started and not self._stopped_reported
            self._stopped_reported = self._stopped_reported or report
            exits = tuple(w.exit_info for w in self._workers.values() if w.exit_info is not None)
        if report and self._closing_line:
            log_closing_line(self._outcome([run.worker for run in late]))
        if report:
            self._hook("server_stopped", exits=exits)
        self._close_when_idle()
        return [run.worker for run in late]

    def _escalate(self, late: list[WorkerRun]) -> None:
        """Past the deadline: terminate what can be, kill it after `KILL_GRACE`, report the rest."""
        if self._force_requested:  # a second signal: _force() killed what could be killed
            ending = [run for run in late if run.killed_on_force]
        else:
            ending = [run for run in late if self._end(run, "terminate")]
            self._wait_for(ending, KILL_GRACE)
        for run in ending:
            if run.worker.name in self._running and not run.killed_on_force:
                self._end(run, "kill")
        self._wait_for(ending, _REAP_LIMIT)
        for run in late:
            stuck = run.worker
            if run not in ending and stuck.is_alive():
                run.forced = True
                logger.warning(
                    "worker %r (%s) did not stop within %.1fs and is abandoned: it keeps running (its backend "
                    "cannot end it; threads cannot be killed); it is at:\n%s",
                    stuck.name,
                    stuck.backend,
                    self._seconds_since_stop(),
                    (stuck.current_stack() or "  <no stack>").rstrip("\n"),
                    extra=log_extra(stuck.name, server=self.name),
                )
                run.end(None)
                self._report_exit(run)

    def _wait_for(self, runs: Iterable[WorkerRun], seconds: float) -> None:
        names = {run.worker.name for run in runs}
        deadline = time.monotonic() + seconds
        with self._changed:
            while names & self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(remaining)

    def _close_when_idle(self) -> None:
        """Release the backends and the monitor once every worker has ended or been given up on."""
        with self._lock:
            if self._handling_signals or any(self._workers[n].exit_info is None for n in self._running):
                return
            backends = [] if self._backends_closed else list(self._backends.values())
            self._backends_closed = True
            monitor = None
            if not self._running:  # else a thread join_all gave up on may still report: keep listening
                monitor, self._monitor = self._monitor, None
        self._each_backend(backends, "close")
        if monitor is not None:
            monitor.close()
            self._systemd.close()
            with _running_lock, contextlib.suppress(ValueError):
                _running_servers.remove(self)

    def _each_backend(self, backends: list[Backend], operation: Literal["stopping", "close"]) -> None:
        """Call `operation` of each backend; one that raises is logged, and the others are still called."""
        for backend in backends:
            try:
                getattr(backend, operation)()
            except Exception:
                logger.exception(
                    "server %r: backend %r failed in %s()",
                    self.name,
                    backend.name,
                    operation,
                    extra=log_extra(server=self.name),
                )

    # ------------------------------------------------------------------ running

    @raises_refusals_here
    def run_forever(self, shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT) -> ServerExit:
        """Start the workers and run until SIGINT/SIGTERM, `stop()`, or every worker has ended.

        Signal handlers for SIGINT and SIGTERM are installed for the duration of
        the call (from the main thread only) and the previous ones restored. The
        first signal stops the workers gracefully within `shutdown_timeout`
        seconds (None or ``math.inf``: as long as they take); a second one
        forces the shutdown (process workers are killed).

        Returns a `ServerExit`; ``sys.exit(server.run_forever().exit_code)``
        makes a command exit non-zero when a worker failed or had to be forced.
        Once every worker has ended, and before the ``server_stopped`` hooks,
        the ``spoc`` logger gets one closing line that says why the server
        stopped and what went wrong, if anything (INFO, else ERROR).

        Raises:
            TypeError, ValueError: `shutdown_timeout` is not a number of
                seconds > 0 or None; nothing was started.
        """
        self._shutdown_timeout = check_timeout(
            shutdown_timeout, f"Server {self.name!r}: run_forever()", "shutdown_timeout"
        )
        monitor = self._ensure_monitor()
        self._closing_line = True
        self.notify_systemd()
        late: list[AbstractWorker] = []
        self._handling_signals = True
        try:
            with handlers_installed(SERVER_SIGNALS, self._note_signal, monitor.wakeup_fd, self._signals.repeats_until):
                try:
                    if not self._started:
                        self.start()
                    self._wait_for_end()
                finally:
                    with self._lock:
                        reason = self._stop_reason or _reason_without_request(self._signal_arrived, bool(self._running))
                    self._request_stop(reason)  # a no-op but for the stop requests when one was made already
                    late = self.join_all(self._shutdown_timeout)
        finally:
            self._handling_signals = False
            self._close_when_idle()  # the monitor's pipe may close now that it is no longer the wakeup fd
        return self._outcome(late)

    def _wait_for_end(self) -> None:
        with self._changed:
            while self._stop_reason is None and (
                self._running or self._replacements.pending or self._scaling.kept_at_zero() or self._held.keeps_any()
            ):
                self._changed.wait()

    def _outcome(self, late: list[AbstractWorker]) -> ServerExit:
        with self._lock:
            exits = tuple(w.exit_info for w in self._workers.values() if w.exit_info is not None)
            received = self._signals.received
            signalled = received or self._signal_arrived
            reason: StopReason = "signal" if signalled else (self._stop_reason or "stop")
            first_signal = signal_name(received[0]) if received else None
            forced = bool(late) or any(e.forced for e in exits)  # a force that ended nothing is not one
            return ServerExit(self.name, reason, first_signal, exits, forced=forced, failure=self._failure)


def _report_start_failure(channel: WorkerChannel, exc: Exception) -> None:
    """End a worker whose backend could not start it, as failed in setup (its events go to the monitor)."""
    worker = channel.worker
    note = "".join(f"\n{line}" for line in getattr(exc, "__notes__", ()))
    text = f"{type(exc).__name__}: backend {worker.backend!r} could not start it{note}\n"
    error = replace(ErrorRecord.from_exception(exc, "setup"), traceback=text)  # spoc's own frames tell nothing
    name = worker.name
    channel.send(make_event(name, "error", phase="setup", error=error))
    channel.exited(1)


def _reason_without_request(signalled: bool, running: bool) -> StopReason:
    if signalled:
        return "signal"
    return "stop" if running else "workers_ended"
