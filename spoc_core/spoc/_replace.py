"""A server's fresh instances: a supervisor's restarts (`Server.restart_worker`), an ended worker started again
(`Server.start_worker`), recycles (`Server.recycle_worker`: one running worker stopped gracefully, within the
server's shutdown timeout, and replaced once it has ended) and reloads (SIGHUP under ``run_forever()``, or
`Server.reload`: the running workers recycled one after another, the next stopped once the fresh instance has
started: never more than one worker down at a time).

`Replacements` is a part of `Server` kept in a module of its own: it acts
through the server's lock, monitor and run records, and the server calls it
where a replacement meets the rest of its life (a worker's end, a signal).
"""

from __future__ import annotations

import functools
import logging
import os
from typing import TYPE_CHECKING, Literal

from ._log_extra import count, log_extra
from ._overdue import end_overdue

if TYPE_CHECKING:
    from ._run import WorkerRun
    from ._server import Server
    from ._worker import AbstractWorker

__all__ = ["Replacements", "log_not_restarted"]

Why = Literal["restart", "recycle", "start", "next", "late"]
"""Why a fresh instance starts: a supervisor's restart, a recycle, `Server.start_worker`, or a reload, which then
stops its next worker (``"next"``), or nothing more (``"late"``: a thread the reload abandoned, which ended after
all)."""

_AFRESH = {"recycle": "recycle", "start": "start_worker", "next": "reload", "late": "reload"}

logger = logging.getLogger("spoc")


def log_not_restarted(server: Server, name: str) -> None:
    """Say that the worker `name` is not restarted because `server` is shutting down."""
    logger.info(
        "worker %r is not restarted: server %r is shutting down",
        name,
        server.name,
        extra=log_extra(name, server=server.name),
    )


class Replacements:
    """A server's fresh instances: its restarts whose delay runs, and its reload, one at a time."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self.pending: dict[str, AbstractWorker] = {}
        """The fresh instances whose start is due (a restart's delay runs), by name."""
        self._queue: list[str] = []  # the workers the reload has still to replace, by name, in order
        self._current: str | None = None  # the worker the reload waits for to end
        self._late: set[str] = set()  # threads a reload abandoned: replaced when they end
        self._starting: AbstractWorker | None = None  # the fresh instance the reload waits for to start
        self._recycling: dict[str, AbstractWorker] = {}  # the workers a recycle stopped, by name, until they end

    def fresh(self, worker: AbstractWorker, restarts: int, delay: float, why: Why = "restart") -> AbstractWorker:
        """A fresh instance of ended `worker`, to start in its place `delay` seconds from now (under the lock)."""
        server = self._server
        assert server._monitor is not None
        fresh = worker.fresh_instance()
        fresh._join_server(server.name, os.getpid())
        fresh.restarts = restarts
        fresh.previous_exit = worker.exit_info
        server._backend_for(fresh)
        server._plugins.check("worker_check", server=server, worker=fresh)
        self.pending[worker.name] = fresh
        server._monitor.call_later(delay, lambda: self._start(fresh, why))
        return fresh

    def start_now(self, fresh: AbstractWorker) -> None:
        """Start pending `fresh` now, on the monitor thread, instead of when its delay ends (under the lock)."""
        monitor = self._server._monitor
        assert monitor is not None
        monitor.call_later(0.0, lambda: self._start(fresh, "restart"))

    def _start(self, fresh: AbstractWorker, why: Why) -> None:
        """On the monitor thread, once a restart's delay has passed, or a reloaded worker has ended."""
        server = self._server
        with server._locked():
            if self.pending.pop(fresh.name, None) is not fresh:
                return
            server._changed.notify_all()
            if server._shutting_down:
                log_not_restarted(server, fresh.name)
                return
            server._workers[fresh.name] = fresh
            server._hook("worker_joined", worker=fresh)
            if why != "restart":
                logger.info(
                    "starting worker %r afresh (%s)",
                    fresh.name,
                    _AFRESH[why],
                    extra=log_extra(fresh.name, server=server.name),
                )
            else:
                logger.info(
                    "restarting worker %r (restart %d)",
                    fresh.name,
                    fresh.restarts,
                    extra=log_extra(fresh.name, server=server.name),
                )
            server._start_worker(fresh, report_failure=True)
            if why == "next":  # the next worker stops once this one has started: one down at a time
                self._current, self._starting = None, fresh
                if server._monitor is not None:
                    server._monitor.call_later(server.shutdown_timeout, functools.partial(self._slow_start, fresh))

    def started(self, worker: AbstractWorker) -> None:
        """`worker` has started (its setup returned): when the reload waits for it, stop the next."""
        with self._server._lock:
            if self._starting is not worker:
                return
            self._starting = None
        self.next()

    def _slow_start(self, fresh: AbstractWorker) -> None:
        """`shutdown_timeout` after the reload started `fresh`: when it has not started yet, go on without it."""
        server = self._server
        with server._lock:
            if self._starting is not fresh:
                return
            self._starting = None
        logger.warning(
            "worker %r has not started within %gs (shutdown_timeout) of the reload's start of it; the reload goes "
            "on with the next worker",
            fresh.name,
            server.shutdown_timeout,
            extra=log_extra(fresh.name, server=server.name),
        )
        self.next()

    # ------------------------------------------------------------------ the reload (SIGHUP)

    def reload(self, cause: str = "received SIGHUP") -> None:
        """SIGHUP, or `Server.reload` (`cause` says which: ``"was asked to reload"``): replace every running
        worker by a fresh instance, one after another; the server keeps running."""
        server = self._server
        with server._lock:
            if server._shutting_down:
                logger.info(
                    "server %r %s while shutting down: nothing to reload",
                    server.name,
                    cause,
                    extra=log_extra(server=server.name),
                )
                return
            if self.reloading:
                logger.warning(
                    "server %r %s during a reload: the reload goes on",
                    server.name,
                    cause,
                    extra=log_extra(server=server.name),
                )
                return
            running = server._running_workers()
            self._queue = [w.name for w in running]
        logger.warning(
            "server %r %s: reloading %s, one after another (each stopped, then replaced by a fresh "
            "instance; code is not re-imported)",
            server.name,
            cause,
            count(len(running), "worker"),
            extra=log_extra(server=server.name),
        )
        server._systemd.reloading()
        server._hook("server_reloading", workers=tuple(running))
        self.next()

    @property
    def reloading(self) -> bool:
        """Whether a reload is under way (under the lock)."""
        return self._current is not None or bool(self._queue) or self._starting is not None

    def reloads(self, name: str) -> bool:
        """Whether a reload stopped the worker `name` and starts its fresh instance itself (under the lock)."""
        return self._current == name or name in self._late

    def recycles(self, worker: AbstractWorker) -> bool:
        """Whether a recycle stopped `worker` and starts its fresh instance once it has ended (under the lock)."""
        return self._recycling.get(worker.name) is worker

    # ------------------------------------------------------------------ a recycle (one worker)

    def recycle(self, worker: AbstractWorker, reason: str) -> bool:
        """Stop running `worker` gracefully and start a fresh instance once it has ended; False when it is not
        running, is stopping already (for any cause) or the server is shutting down."""
        server = self._server
        with server._locked():
            run = server._runs.get(worker.name)
            if (
                server._shutting_down
                or server._monitor is None
                or server._workers.get(worker.name) is not worker
                or run is None
                or run.worker is not worker
                or worker.name not in server._running
                or worker.exit_info is not None
                or worker.stop_requested
                or self.reloads(worker.name)
                or worker.name in self._recycling
            ):
                return False
            self._recycling[worker.name] = worker
            server._hook("worker_recycling", worker=worker, reason=reason)
            server._monitor.call_later(server.shutdown_timeout, functools.partial(self._recycle_overdue, worker))
        worker.stop()
        return True

    def _recycle_overdue(self, worker: AbstractWorker) -> None:
        """`shutdown_timeout` after a recycle asked `worker` to stop: end it as a shutdown would. A thread cannot
        be ended: it stays recycled, and its fresh instance starts when it ends."""
        still_late = functools.partial(self._recycled_run, worker)
        run = still_late()
        if run is not None:
            end_overdue(self._server, run, "the recycle", "its fresh instance starts", still_late)

    def _recycled_run(self, worker: AbstractWorker) -> WorkerRun | None:
        """`worker`'s run while a recycle waits for it to end, else None."""
        server = self._server
        with server._lock:
            run = server._runs.get(worker.name)
            if not self.recycles(worker) or run is None or run.worker is not worker or server._shutting_down:
                return None
            return run if worker.exit_info is None else None

    def _recycled(self, worker: AbstractWorker) -> None:
        """A worker a recycle stopped has ended: start its fresh instance in its place (not when a scale-down
        took it out of the server meanwhile)."""
        server = self._server
        with server._locked():
            self._recycling.pop(worker.name, None)
            if server._shutting_down or server._workers.get(worker.name) is not worker:
                return
            if server._scaling.stopped_by_scaling(worker):
                return
            try:
                self.fresh(worker, worker.restarts, 0.0, why="recycle")
            except Exception:
                logger.exception(
                    "worker %r could not be recycled", worker.name, extra=log_extra(worker.name, server=server.name)
                )

    def worker_ended(self, worker: AbstractWorker) -> None:
        """`worker` has ended: when a reload stopped it, start its fresh instance in its place (registered before
        ``run_forever`` can see no worker running)."""
        if worker.exit_info is None:
            return
        if self._starting is worker:  # a fresh instance that ended before it started: the reload goes on
            self.started(worker)
        elif worker.name in self._late:
            self._ended(worker, late=True)
        elif self._current == worker.name:
            self._recycling.pop(worker.name, None)  # the reload replaces it
            self._ended(worker)
        elif self.recycles(worker):
            self._recycled(worker)

    def next(self) -> None:
        """Stop the next worker of the reload (its end starts its replacement), or say the reload is done."""
        server = self._server
        with server._lock:
            self._current = None
            while self._queue and not server._shutting_down:
                worker = server._workers.get(self._queue.pop(0))
                if worker is not None and worker.name in server._running and worker.exit_info is None:
                    self._current = worker.name
                    break
            else:
                self._queue = []
                logger.info("server %r: reload done", server.name, extra=log_extra(server=server.name))
                server._systemd.reloaded()
                return
            if server._monitor is not None:
                server._monitor.call_later(server.shutdown_timeout, functools.partial(self._overdue, worker))
        worker.stop()

    def _waiting_for(self, worker: AbstractWorker) -> WorkerRun | None:
        """`worker`'s run while the reload waits for it to end, else None (under the lock)."""
        server = self._server
        run = server._runs.get(worker.name)
        if self._current != worker.name or run is None or run.worker is not worker or server._shutting_down:
            return None
        return run if worker.exit_info is None else None

    def _overdue(self, worker: AbstractWorker) -> None:
        """`shutdown_timeout` after the reload asked `worker` to stop: end it as a shutdown would (its end then
        starts its replacement), or abandon a thread, and go on with the next."""
        server = self._server
        with server._lock:
            run = self._waiting_for(worker)
        if run is None:
            return
        if end_overdue(self._server, run, "the reload", "its fresh instance starts", lambda: self._still_late(worker)):
            return
        with server._lock:
            self._late.add(worker.name)
        self.next()

    def _still_late(self, worker: AbstractWorker) -> WorkerRun | None:
        """`worker`'s run, when the reload still waits for it to end `KILL_GRACE` after it was terminated."""
        with self._server._lock:
            return self._waiting_for(worker)

    def _ended(self, worker: AbstractWorker, late: bool = False) -> None:
        """A worker stopped for the reload has ended: start its fresh instance in its place. A `late` one (a
        thread the reload abandoned, which went on without it) starts its own alone."""
        server = self._server
        with server._locked():
            if late:
                self._late.discard(worker.name)
            if not server._shutting_down and server._workers.get(worker.name) is worker:
                try:
                    self.fresh(worker, worker.restarts, 0.0, why="late" if late else "next")
                    return
                except Exception:
                    logger.exception(
                        "worker %r could not be reloaded", worker.name, extra=log_extra(worker.name, server=server.name)
                    )
        if not late:
            self.next()
