"""Supervisor: the plugin that keeps a server's workers running, as an Erlang/OTP supervisor does.

It decides in the ``worker_exited`` hook, on the server's monitor thread:
whether the worker's policy wants it back, whether to give up on it (it has
failed at every attempt for too long, or past a restart intensity: the
server then stops and reports failure), how long to back off, and which
workers restart with it (the strategy). The restart itself is the core's
`Server.restart_worker`: a fresh instance, built from the same constructor
arguments, started after the delay.

It also recycles workers past a limit (``max_age``, ``max_jobs``,
``max_memory``): the core's `Server.recycle_worker` stops one gracefully and
starts a fresh instance; not a failure, and never more than one replica of a
worker at a time.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from spoc import (
    AbstractWorker,
    ErrorRecord,
    ProcessWorker,
    Server,
    SpocError,
    StashKey,
    WorkerExit,
    hookimpl,
    log_extra,
    settings,
)

from ._backoff import Backoff, RestartWindow
from ._recycler import Limit, Recycler
from ._settings import (
    STRATEGIES,
    Policy,
    Strategy,
    WorkerSettings,
    settings_of,
)
from ._watchdog import Hang, Watchdog

__all__ = ["ALIVE_TOPIC", "HUNG_TOPIC", "RestartStatus", "Supervisor"]

logger = logging.getLogger("spoc.restart")

HUNG_TOPIC = "spoc_restart.hung"
"""The record a process worker's child sends when its watchdog finds it hung."""
ALIVE_TOPIC = "spoc_restart.alive"
"""The record a process worker's child sends on each round of its watchdog (``round``: its number):
the watchdog itself runs."""
RECOVERED_TOPIC = "spoc_restart.recovered"
RECYCLE_TOPIC = "spoc_restart.recycle"
"""The record a worker sends where it lives when it has done its ``max_jobs``."""

WEDGED_AFTER = 2.0
"""A process worker's child whose watchdog has not reported for this many timeouts is stuck where
Python cannot run (native code holding the GIL, or a stopped process): it is killed without a stack."""


@dataclass(frozen=True)
class RestartStatus:
    """What the supervisor knows of one worker (for dashboards and metrics).

    Attributes:
        restarts: how many times it was restarted (the current instance's ``restarts``).
        has_started: whether any of its instances ever started (was up
            ``started_after`` seconds after its setup, or ended cleanly).
        failing_since: the supervisor's clock reading at the first failure of
            the attempts that have failed in a row, or None.
        consecutive_failures: restarts since it last stayed up ``reset_after`` seconds.
        last_error: the last error any of its instances reported.
        last_exit: how its last instance that ended ended.
        hung: whether the watchdog reports it hung right now.
        delays: the backoff waited before each of its last restarts (at most 64), oldest first.
        recycles: how many of its instances were recycled (past ``max_age``, ``max_jobs`` or ``max_memory``).
        last_recycle: why the last one was, with the figure (``"it has run 61.2s (max_age=60; ...)"``), or None.
    """

    restarts: int
    has_started: bool
    failing_since: float | None
    consecutive_failures: int
    last_error: ErrorRecord | None
    last_exit: WorkerExit | None
    hung: bool
    delays: tuple[float, ...]
    recycles: int = 0
    last_recycle: str | None = None


@dataclass
class _WorkerState:
    window: RestartWindow | None = None
    consecutive: int = 0
    started_at: float | None = None
    has_started: bool = False
    failing_since: float | None = None
    failed_attempts: int = 0
    restarts: int = 0
    last_error: ErrorRecord | None = None
    last_exit: WorkerExit | None = None
    hung: bool = False
    delays: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=64))
    recycles: int = 0
    last_recycle: str | None = None


@dataclass
class _Group:
    """A one_for_all / rest_for_one restart: the workers to start again once those stopped have ended."""

    delay: float
    restart: set[str]
    waiting: set[str]


@dataclass
class _Remote:
    """A process worker whose watchdog runs in its child: when the child last reported."""

    worker: Any
    timeout: float
    last_report: float
    killed: bool = False


@dataclass
class _ServerState:
    window: RestartWindow
    workers: dict[str, _WorkerState] = field(default_factory=dict)
    group: _Group | None = None
    stopping: bool = False
    gave_up: bool = False
    watchdog: Watchdog | None = None
    remote: dict[str, _Remote] = field(default_factory=dict)
    recycler: Recycler | None = None
    recycling: dict[str, str] = field(default_factory=dict)
    """The replica being recycled of each worker (by base name), from its recycle until its fresh instance started."""
    due: dict[str, list[tuple[Any, Limit]]] = field(default_factory=dict)
    """The replicas waiting for their recycle, by base name: one replica of a worker is recycled at a time."""
    lock: threading.RLock = field(default_factory=threading.RLock)

    def of(self, name: str) -> _WorkerState:
        return self.workers.setdefault(name, _WorkerState())


class Supervisor:
    """A spoc plugin that restarts the workers of every server it is given to.

    Installed (``pip install spoc-plugin-restart``) it supervises every server
    with the defaults below; ``Server(plugins=[Supervisor(...)])`` gives a
    server a configured one instead (it takes the installed one's name,
    ``restart``, and replaces it). Each worker may override `policy`,
    `start_within`, `give_up_after`, its own restart intensity and
    `watchdog_timeout` with class attributes or ``plugin_options`` named
    ``restart_policy``, ``start_within``, ``give_up_after``,
    ``max_restarts``, ``restart_within`` and ``watchdog_timeout``; and when
    to recycle it (a graceful replacement, not a failure: gunicorn's
    ``max_requests``, circus's ``max_age``) with ``max_age``, ``max_jobs``,
    ``max_memory`` and ``recycle_jitter``.

    When to give up, by default: on a worker that has never started (as
    supervisord's ``startsecs``: up `started_after` seconds after its setup,
    or ended cleanly) and has failed at every attempt for `start_within`
    seconds; a worker that did start once is restarted as long as it takes
    (a dependency's outage), as Kubernetes does, with the backoff capped.

    Args:
        strategy: which workers restart with a failed one: ``"one_for_one"``
            (itself), ``"one_for_all"`` (every worker: the others are stopped
            first) or ``"rest_for_one"`` (itself and those added after it).
        policy: the default restart policy: ``"on-failure"``, ``"always"`` or ``"never"``.
        max_restarts: the server's restart intensity, as Erlang/OTP's: at
            most this many restarts within `within` seconds, all workers
            together; one more and the server gives up (None, the default: no limit).
        within: the intensity's window, in seconds.
        backoff: the delay before each restart (`Backoff`).
        watchdog_timeout: the default seconds without a heartbeat after which
            a worker is hung (None: no watchdog).
        start_within: seconds a worker that has never started may fail at
            every attempt (counted from its first failure); at its first
            failure past them the server shuts down gracefully, reporting
            failure (None: never give up).
        give_up_after: the same for a worker that did start once, counted
            from its first failure since (None, the default: never give up).
        started_after: seconds an instance must be up after its ``setup()``
            to count as started.
        max_age: the default seconds an instance runs before it is
            recycled (None, the default: no limit).
        max_jobs: the default number of jobs (`spoc.AbstractWorker.job_done`)
            an instance does before it is recycled (None: no limit).
        max_memory: the default resident memory a process worker's child may
            reach before it is recycled: bytes, or a string such as
            ``"512MiB"`` (None: no limit). Thread workers are not held to it.
        recycle_jitter: each instance's limits are drawn within this
            fraction of the settings (0.1: ±10%; from 0 to 0.5), so that
            replicas do not recycle together.
        clock: the monotonic clock for the intensity window and uptime (tests inject one).
        random: the source of jitter, a float in [0, 1) per call (tests inject one).
    """

    name = "restart"

    def __init__(
        self,
        strategy: Strategy = "one_for_one",
        policy: Policy = "on-failure",
        max_restarts: int | None = None,
        within: float = 60.0,
        backoff: Backoff | None = None,
        watchdog_timeout: float | None = None,
        *,
        start_within: float | None = 60.0,
        give_up_after: float | None = None,
        started_after: float = 1.0,
        max_age: float | None = None,
        max_jobs: int | None = None,
        max_memory: int | str | None = None,
        recycle_jitter: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = random.random,
    ) -> None:
        owner = "Supervisor"
        self.strategy: Strategy = settings.choice(owner, "strategy", strategy, STRATEGIES)
        self.max_restarts = settings.whole(owner, "max_restarts", max_restarts, none="for no limit")
        self.within = settings.seconds(owner, "within", within)
        self.started_after = settings.seconds(owner, "started_after", started_after, zero=True)
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(f"Supervisor: backoff={backoff!r} must be a spoc_restart.Backoff")
        self.backoff = backoff or Backoff()
        self._defaults: dict[str, Any] = {
            "restart_policy": policy,
            "start_within": start_within,
            "give_up_after": give_up_after,
            "max_restarts": None,
            "restart_within": self.within,
            "watchdog_timeout": watchdog_timeout,
            "max_age": max_age,
            "max_jobs": max_jobs,
            "max_memory": max_memory,
            "recycle_jitter": recycle_jitter,
        }
        probe = settings_of(_Probe(), **self._defaults)  # refuses a bad policy, limit or watchdog_timeout now
        self.policy: Policy = policy
        self.start_within = probe.start_within
        self.give_up_after = probe.give_up_after
        self.watchdog_timeout = watchdog_timeout
        self._clock = clock
        self._random = random
        self._state_key = StashKey[_ServerState]()  # its state of each server, in the server's stash
        self._states_lock = threading.Lock()
        self._settings: weakref.WeakKeyDictionary[AbstractWorker, WorkerSettings] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return (
            f"Supervisor(strategy={self.strategy!r}, policy={self.policy!r}, start_within={self.start_within}, "
            f"give_up_after={self.give_up_after}, max_restarts={self.max_restarts}, within={self.within:g}, "
            f"watchdog_timeout={self.watchdog_timeout})"
        )

    # ------------------------------------------------------------------ pickling (to process workers' children)

    def __getstate__(self) -> dict[str, Any]:
        """What a child needs (the settings): not the servers' state, nor an injected clock."""
        keep = (
            "strategy",
            "start_within",
            "give_up_after",
            "started_after",
            "max_restarts",
            "within",
            "backoff",
            "_defaults",
            "policy",
            "watchdog_timeout",
        )
        return {key: self.__dict__[key] for key in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._clock = time.monotonic
        self._random = random.random
        self._state_key = StashKey[_ServerState]()
        self._states_lock = threading.Lock()
        self._settings = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ what others may read

    def settings(self, worker: AbstractWorker) -> WorkerSettings:
        """`worker`'s supervision: its own settings over this supervisor's defaults.

        Raises:
            ValueError: a setting of the worker's is not valid (the message names it).
        """
        # Start latency: read once per worker instance (its settings are its class's and its plugin_options,
        # fixed once it was added); each hook of each start read and checked them again, a tenth of a millisecond.
        found = self._settings.get(worker)
        if found is None:
            found = self._settings[worker] = settings_of(worker, **self._defaults)
        return found

    def status(self, server: Server) -> dict[str, RestartStatus]:
        """What this supervisor knows of each worker of `server` it has seen end or start."""
        state = self._state(server)
        with state.lock:
            return {
                name: RestartStatus(
                    ws.restarts,
                    ws.has_started,
                    ws.failing_since,
                    ws.consecutive,
                    ws.last_error,
                    ws.last_exit,
                    ws.hung,
                    tuple(ws.delays),
                    ws.recycles,
                    ws.last_recycle,
                )
                for name, ws in state.workers.items()
            }

    def _state(self, server: Server) -> _ServerState:
        with self._states_lock:
            state = server.stash.get(self._state_key, None)
            if state is None:
                state = server.stash[self._state_key] = _ServerState(RestartWindow(self.max_restarts, self.within))
            return state

    # ------------------------------------------------------------------ hooks in the server's process

    @hookimpl
    def worker_check(self, worker: AbstractWorker) -> None:
        self.settings(worker)

    @hookimpl
    def server_starting(self, server: Server) -> None:
        with self._states_lock:
            server.stash[self._state_key] = _ServerState(RestartWindow(self.max_restarts, self.within))

    @hookimpl
    def worker_joined(self, worker: AbstractWorker) -> None:
        if not isinstance(worker, ProcessWorker):  # it lives here: count its jobs here (a child counts its own)
            self._count_jobs(worker, self.settings(worker))

    @hookimpl
    def worker_started(self, server: Server, worker: AbstractWorker) -> None:
        state = self._state(server)
        worker_settings = self.settings(worker)
        timeout = worker_settings.watchdog_timeout
        self._watch_limits(server, state, worker, worker_settings)
        if state.recycling.get(worker.base_name) == worker.name:  # its recycle is done: the next replica's turn
            self._recycle_next(server, state, worker.base_name)
        with state.lock:
            ws = state.of(worker.name)
            ws.started_at = self._clock()
            ws.restarts = worker.restarts
            if timeout is None or state.stopping:
                return
            watchdog = self._watchdog(server, state)
            if isinstance(worker, ProcessWorker):  # its child's watchdog judges it; ours checks that one runs
                state.remote[worker.name] = _Remote(worker, timeout, time.monotonic())
                watchdog.start(timeout)
            else:
                watchdog.watch(worker, timeout)

    @hookimpl
    def worker_record(self, server: Server, worker: AbstractWorker, topic: str, data: dict[str, Any]) -> None:
        if not topic.startswith("spoc_restart."):
            return
        state = self._state(server)
        with state.lock:
            remote = state.remote.get(worker.name)
            if remote is not None and remote.worker is worker:
                remote.last_report = time.monotonic()
            if topic == HUNG_TOPIC:
                state.of(worker.name).hung = True
        if topic == RECYCLE_TOPIC:
            self._limit_reached(server, worker, Limit("jobs", data["figure"], data["limit"], data["setting"]))
        elif topic == HUNG_TOPIC:
            hang = Hang(data["seconds"], data["timeout"], data["loop_blocked"], data["stack"])
            logger.error(
                "%s; killing it (pid %s). It is at:\n%s",
                hang.describe(worker.name),
                data["pid"],
                hang.stack,
                extra=log_extra(worker.name),
            )
            server.kill_worker(worker, reason=f"spoc-plugin-restart's watchdog: {hang.symptom}")
        elif topic == RECOVERED_TOPIC:
            logger.warning("worker %r shows it is alive again", worker.name, extra=log_extra(worker.name))

    @hookimpl
    def worker_exited(self, server: Server, worker: AbstractWorker, exit_info: WorkerExit) -> None:
        state = self._state(server)
        with state.lock:
            if state.watchdog is not None:
                state.watchdog.unwatch(worker)
            if (remote := state.remote.get(worker.name)) is not None and remote.worker is worker:
                del state.remote[worker.name]
            if state.recycler is not None:
                state.recycler.unwatch(worker)
            stopped_by = server.stopped_by(worker)  # asked once: it takes the server's lock
            recycled = stopped_by == "recycle"
            if recycled:
                state.of(worker.name).recycles += 1
            ws = state.of(worker.name)
            now = self._clock()
            self._note_attempt(ws, exit_info, now)
            ws.started_at, ws.last_exit, ws.hung = None, exit_info, False
            ws.last_error = exit_info.error or ws.last_error
            if state.stopping or state.gave_up:
                return
            group = state.group
            if group is not None and worker.name in group.waiting:
                group.waiting.discard(worker.name)
                if not group.waiting:
                    self._restart_group(server, state)
                return
            if state.recycling.get(worker.base_name) == worker.name and not recycled:
                self._recycle_next(server, state, worker.base_name)  # its recycle failed, or its fresh instance did
            if stopped_by is not None:  # a reload or recycle replaces it, a scale-down
                return  # removes it
            settings = self.settings(worker)
            if not _wants_restart(settings.restart_policy, exit_info):
                if exit_info.outcome != "stopped":
                    logger.info(
                        "worker %r ended (%s) and is not restarted (restart_policy=%r)",
                        worker.name,
                        exit_info.outcome,
                        settings.restart_policy,
                        extra=log_extra(worker.name),
                    )
                return
            failure = self._why_give_up(state, ws, worker, settings, exit_info, now)
            if failure is not None:
                state.gave_up = True
                server.stop(failure=failure)  # its server_stopping reaches us on this thread: the lock is an RLock
                return
            ws.consecutive += 1
            delay = self.backoff.delay(ws.consecutive, self._random())
            ws.delays.append(delay)
            self._restart(server, state, worker, exit_info, delay)

    @hookimpl
    def server_stopping(self, server: Server) -> None:
        state = self._state(server)
        with state.lock:
            state.stopping = True
            state.group = None
            state.remote.clear()
            state.due.clear()
            recycler = state.recycler
        if recycler is not None:
            recycler.close()

    @hookimpl
    def server_stopped(self, server: Server) -> None:
        state = self._state(server)
        with state.lock:
            watchdog, state.watchdog = state.watchdog, None
            state.recycler = None  # closed by server_stopping
        if watchdog is not None:
            watchdog.close()

    # ------------------------------------------------------------------ deciding

    def _note_attempt(self, ws: _WorkerState, exit_info: WorkerExit, now: float) -> None:
        """Take in how an instance ended: did it start, does a run of failed attempts begin or go on."""
        up = None if ws.started_at is None else now - ws.started_at  # None: its setup never completed
        if up is not None and up >= self.backoff.reset_after:
            ws.consecutive = 0  # it stayed up: a failure now is not part of a crash loop
        started = exit_info.outcome == "clean" or (up is not None and up >= self.started_after)
        ws.has_started = ws.has_started or started
        if exit_info.outcome not in ("failed", "killed"):
            ws.failing_since, ws.failed_attempts = None, 0
        elif started or ws.failing_since is None:  # it worked, or had not failed before: a run of failures begins
            ws.failing_since, ws.failed_attempts = now, 1
        else:
            ws.failed_attempts += 1

    def _why_give_up(
        self,
        state: _ServerState,
        ws: _WorkerState,
        worker: AbstractWorker,
        settings: WorkerSettings,
        exit_info: WorkerExit,
        now: float,
    ) -> str | None:
        """None when one more restart is allowed (and counted); else why the server gives up."""
        limit, name = (
            (settings.give_up_after, "give_up_after") if ws.has_started else (settings.start_within, "start_within")
        )
        if ws.failing_since is not None and limit is not None and now - ws.failing_since >= limit:
            what = "has failed at every attempt since it last ran" if ws.has_started else "has never started"
            return (
                f"worker {worker.name!r} {what}: {ws.failed_attempts} attempt(s) in a row failed over "
                f"{now - ws.failing_since:.1f}s ({name}={limit:g}); its last error: "
                f"{_describe(ws.last_error, exit_info)}"
            )
        if ws.window is None:
            ws.window = RestartWindow(settings.max_restarts, settings.restart_within)
        for window, whose in ((ws.window, "the worker's"), (state.window, "the server's")):
            if not window.allows(now):
                return (
                    f"worker {worker.name!r} {_ended(exit_info)} after {len(window)} restart(s) within "
                    f"{window.within:g}s, {whose} limit (max_restarts={window.limit}); its last error: "
                    f"{_describe(ws.last_error, exit_info)}"
                )
        ws.window.add(now)
        state.window.add(now)
        return None

    def _companions(self, server: Server, worker: AbstractWorker) -> list[AbstractWorker]:
        """The running workers that restart with `worker` under the strategy, in the order they were added."""
        if self.strategy == "one_for_one":
            return []
        workers = list(server.workers)
        after = workers[workers.index(worker) + 1 :] if worker in workers else []
        chosen = after if self.strategy == "rest_for_one" else [w for w in workers if w is not worker]
        return [w for w in chosen if w.started and w.exit_info is None]

    def _restart(
        self, server: Server, state: _ServerState, worker: AbstractWorker, exit_info: WorkerExit, delay: float
    ) -> None:
        waiting = state.group.waiting if state.group is not None else set()
        companions = [w for w in self._companions(server, worker) if w.name not in waiting]
        logger.warning(
            "worker %r %s: restarting it in %.2fs (restart %d)%s",
            worker.name,
            _ended(exit_info),
            delay,
            worker.restarts + 1,
            f" with {', '.join(repr(w.name) for w in companions)} ({self.strategy})" if companions else "",
            extra=log_extra(worker.name),
        )
        if state.group is None and not companions:
            try:
                server.restart_worker(worker, delay)
            except (ValueError, SpocError) as exc:
                logger.error("worker %r could not be restarted: %s", worker.name, exc, extra=log_extra(worker.name))
            return
        group = state.group or _Group(delay, set(), set())
        state.group = group
        group.delay = max(group.delay, delay)
        group.restart.add(worker.name)
        group.restart.update(w.name for w in companions if self.settings(w).restart_policy != "never")
        group.waiting.update(w.name for w in companions)
        for companion in companions:
            companion.stop()
        if not group.waiting:
            self._restart_group(server, state)

    def _restart_group(self, server: Server, state: _ServerState) -> None:
        group, state.group = state.group, None
        if group is None:
            return
        for worker in server.workers:
            if worker.name in group.restart:
                try:
                    server.restart_worker(worker, group.delay)
                except (ValueError, SpocError) as exc:
                    logger.error("worker %r could not be restarted: %s", worker.name, exc, extra=log_extra(worker.name))

    # ------------------------------------------------------------------ recycling

    def _draw(self, setting: float, jitter: float) -> float:
        """An instance's limit: `setting`, moved by up to ``±jitter`` of it (at random)."""
        return setting * (1 + jitter * (2 * self._random() - 1))

    def _count_jobs(self, worker: AbstractWorker, worker_settings: WorkerSettings) -> None:
        """Where `worker` lives: have it tell the server when it has done its ``max_jobs``."""
        max_jobs = worker_settings.max_jobs
        if max_jobs is None:
            return
        limit = max(1, round(self._draw(max_jobs, worker_settings.recycle_jitter)))
        worker.call_at_jobs(
            limit, lambda jobs: _tell(worker, RECYCLE_TOPIC, figure=jobs, limit=limit, setting=max_jobs)
        )

    def _watch_limits(
        self, server: Server, state: _ServerState, worker: AbstractWorker, worker_settings: WorkerSettings
    ) -> None:
        """Have the recycler watch `worker`'s age and memory, each limit drawn for this instance."""
        jitter = worker_settings.recycle_jitter
        max_age, max_memory = worker_settings.max_age, worker_settings.max_memory
        age = None if max_age is None else (self._draw(max_age, jitter), max_age)
        memory = None if max_memory is None else (self._draw(max_memory, jitter), float(max_memory))
        if memory is not None and getattr(worker, "pid", None) is None:
            logger.warning(
                "worker %r: max_memory=%d is not enforced: its process runs where this server cannot read its "
                "memory (backend %r)",
                worker.name,
                max_memory,
                worker.backend,
                extra=log_extra(worker.name),
            )
            memory = None
        if age is None and memory is None:
            return
        with state.lock:
            if state.stopping:
                return
            if state.recycler is None:
                state.recycler = Recycler(
                    f"spoc-recycler:{server.name}", lambda reached, limit: self._limit_reached(server, reached, limit)
                )
            recycler = state.recycler
        recycler.watch(worker, age, memory)

    def _limit_reached(self, server: Server, worker: AbstractWorker, limit: Limit) -> None:
        """`worker` has reached `limit`: recycle it now, or once the replica of its worker being recycled is back."""
        state = self._state(server)
        base = worker.base_name
        names = {w.name for w in server.workers}
        with state.lock:
            if state.stopping or state.gave_up:
                return
            if state.recycling.get(base) not in names:  # the replica being recycled was scaled away meanwhile
                state.recycling.pop(base, None)
            if base in state.recycling:
                due = state.due.setdefault(base, [])
                if all(waiting is not worker for waiting, _ in due):
                    due.append((worker, limit))
                return
            state.recycling[base] = worker.name
        self._recycle(server, state, worker, limit)

    def _recycle(self, server: Server, state: _ServerState, worker: AbstractWorker, limit: Limit) -> None:
        """Recycle `worker` (its worker's turn is taken); when it cannot be, give the turn to the next replica."""
        if worker.exit_info is None and server.recycle_worker(worker, limit.reason):
            logger.info("worker %r is recycled: %s", worker.name, limit.describe(), extra=log_extra(worker.name))
            with state.lock:
                state.of(worker.name).last_recycle = limit.describe()
            return
        self._recycle_next(server, state, worker.base_name)

    def _recycle_next(self, server: Server, state: _ServerState, base: str) -> None:
        """The replica of `base` being recycled is back (or could not be recycled): recycle the next one due."""
        while True:
            workers = server.workers
            with state.lock:
                state.recycling.pop(base, None)
                due = state.due.get(base)
                if not due or state.stopping or state.gave_up:
                    state.due.pop(base, None)
                    return
                worker, limit = due.pop(0)
                if not any(w is worker for w in workers) or worker.exit_info is not None:
                    continue  # it ended meanwhile: its fresh instance has limits of its own
                state.recycling[base] = worker.name
            self._recycle(server, state, worker, limit)
            return

    # ------------------------------------------------------------------ the watchdog

    def _watchdog(self, server: Server, state: _ServerState) -> Watchdog:
        if state.watchdog is None:
            state.watchdog = Watchdog(
                f"spoc-watchdog:{server.name}",
                on_hung=lambda worker, hang: self._thread_hung(state, worker, hang),
                on_alive=lambda worker: self._thread_alive(state, worker),
                on_check=lambda rounds: self._check_children(server, state),
            )
        return state.watchdog

    def _thread_hung(self, state: _ServerState, worker: AbstractWorker, hang: Hang) -> None:
        with state.lock:
            state.of(worker.name).hung = True
        logger.error(
            "%s; a thread cannot be killed, so it keeps running. It is at:\n%s",
            hang.describe(worker.name),
            hang.stack.rstrip("\n"),
        )

    def _thread_alive(self, state: _ServerState, worker: AbstractWorker) -> None:
        with state.lock:
            state.of(worker.name).hung = False
        logger.warning("worker %r shows it is alive again", worker.name, extra=log_extra(worker.name))

    def _check_children(self, server: Server, state: _ServerState) -> None:
        """On the watchdog's thread: kill a child whose own watchdog has gone silent."""
        now = time.monotonic()
        with state.lock:
            wedged = [
                r for r in state.remote.values() if not r.killed and now - r.last_report > WEDGED_AFTER * r.timeout
            ]
            for remote in wedged:
                remote.killed = True
        for remote in wedged:
            logger.error(
                "worker %r is hung: its child's watchdog has not reported for %.1fs (watchdog_timeout=%g), so "
                "Python cannot run there (native code holding the GIL, or a stopped process); killing it "
                "(pid %s): its stack, if it can still print one, follows on stderr",
                remote.worker.name,
                now - remote.last_report,
                remote.timeout,
                getattr(remote.worker, "pid", "?"),
                extra=log_extra(remote.worker.name),
            )
            server.kill_worker(
                remote.worker,
                reason=f"spoc-plugin-restart's watchdog: its child's watchdog has not reported for "
                f"{now - remote.last_report:.1f}s (watchdog_timeout={remote.timeout:g})",
            )

    # ------------------------------------------------------------------ in a process worker's child

    @hookimpl
    def child_starting(self, worker: AbstractWorker) -> None:
        worker_settings = self.settings(worker)
        self._count_jobs(worker, worker_settings)
        timeout = worker_settings.watchdog_timeout
        if timeout is None:
            return
        watchdog = Watchdog(
            f"spoc-watchdog:{worker.name}",
            on_hung=lambda hung, hang: _tell(worker, HUNG_TOPIC, **_hang_fields(hang)),
            on_alive=lambda alive: _tell(worker, RECOVERED_TOPIC),
            on_check=lambda rounds: _tell(worker, ALIVE_TOPIC, round=rounds),
        )
        watchdog.watch(worker, timeout)


class _Probe:
    """Stands for a worker with no settings of its own, to check a supervisor's defaults."""

    name = "<default>"
    plugin_options: ClassVar[dict[str, Any]] = {}


def _wants_restart(policy: Policy, exit_info: WorkerExit) -> bool:
    """A stop that was asked for is never a failure; ``on-failure`` wants failed and killed workers back."""
    if exit_info.outcome == "stopped" or policy == "never":
        return False
    return policy == "always" or exit_info.outcome in ("failed", "killed")


def _ended(exit_info: WorkerExit) -> str:
    if exit_info.outcome == "killed" and exit_info.signal is not None:
        if exit_info.signal == exit_info.stop_signal:
            return f"was stopped by {exit_info.signal} from outside its server"
        return f"was killed by {exit_info.signal}"
    return {"failed": "failed", "killed": "was killed", "clean": "ended"}.get(exit_info.outcome, exit_info.outcome)


def _describe(error: ErrorRecord | None, exit_info: WorkerExit) -> str:
    if error is not None:
        return f"{error.type_name}: {error.message} (in {error.phase})" if error.message else error.type_name
    return f"none reported ({_ended(exit_info)}, exit code {exit_info.exitcode})"


def _hang_fields(hang: Hang) -> dict[str, Any]:
    return {
        "seconds": hang.seconds,
        "timeout": hang.timeout,
        "loop_blocked": hang.loop_blocked,
        "stack": hang.stack,
        "pid": os.getpid(),
    }


def _tell(worker: AbstractWorker, topic: str, **data: Any) -> None:
    """Send a record from the child's watchdog; once the body has ended there is no one to tell."""
    try:
        worker.send_record(topic, **data)
    except (SpocError, OSError, ValueError):
        pass
