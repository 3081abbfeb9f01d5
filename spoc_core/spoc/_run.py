"""WorkerRun: one run of one worker, as the side that supervises it keeps it.

A worker object is the user's body. Where it is supervised (its server, or
the process that called ``worker.start()`` on its own) each instance also
has one run record: how it is waited on (its runner), the channel its events
come through, what they said (its first error, how it ended), and the log
lines of its lifecycle. The supervising side alone writes it; the worker's
public properties (`AbstractWorker.error`, `exit_info`, ``join()``) read it.
A run record never crosses to a child: there the worker is the body alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._errors import ErrorRecord
from ._events import WorkerEvent, WorkerExit
from ._latch import Latch
from ._log_extra import log_extra
from ._signals import signal_name

if TYPE_CHECKING:
    from ._backend import Backend, WorkerChannel
    from ._worker import AbstractWorker

__all__ = ["WorkerRun"]

logger = logging.getLogger("spoc")


class WorkerRun:
    """One run of `worker` where it is supervised: written by the supervising side only (see the module)."""

    __slots__ = (
        "after_stack",
        "backend",
        "channel",
        "error",
        "exit_handled",
        "exit_info",
        "exit_reported",
        "finished",
        "forced",
        "killed_on_force",
        "launched_at",
        "pid",
        "runner",
        "stack_pending",
        "stack_waiters",
        "started_reported",
        "stop_signal",
        "stopping_reported",
        "teardown_duration",
        "worker",
    )

    def __init__(self, worker: AbstractWorker) -> None:
        self.worker = worker
        self.runner: Any = None
        """What it is waited on with (`Runner`): a thread, a child runner; None until it started."""
        self.channel: WorkerChannel | None = None
        """The channel its events come through, under a server (its backend's); None on its own."""
        self.backend: Backend | None = None
        """The backend that runs it, under a server."""
        self.finished = Latch()
        """Set once it has ended (`exit_info`)."""
        self.error: ErrorRecord | None = None
        self.exit_info: WorkerExit | None = None
        self.stop_signal: str | None = None
        """A signal from outside the server that stopped it (its ``"stopping"`` event said so)."""
        self.stack_pending = False
        """A stack dump was asked of its child and has not arrived."""
        self.stack_waiters: list[Callable[[str], None]] = []
        """Who waits for its next stack dump (`Server.worker_stack`): each called once with its text."""
        self.pid: int | None = None
        """The process its body runs in, from its events (the server's own for a thread worker)."""
        self.launched_at: float | None = None
        """When its server launched it (``time.time()``)."""
        self.after_stack: Callable[[], None] | None = None
        """What to do once the stack asked for has arrived (or instead, when it is given up on): the deadline's
        SIGTERM, which must not cut the answer off."""
        self.teardown_duration: float | None = None
        self.forced = False
        """The server had to end it (terminated or killed past the deadline, killed on a second signal or by
        `Server.kill_worker`) or give up on it."""
        self.killed_on_force = False
        """A second signal killed it: the deadline's escalation leaves it alone."""
        self.stopping_reported = False
        self.exit_reported = False
        self.exit_handled = False
        """Its server has handled its end: its ``worker_exited`` hooks have run (a supervisor's restart is pending)."""
        self.started_reported = False
        """Its ``"startup"`` event came: its setup returned."""

    # ------------------------------------------------------------------ events, and the log lines of the lifecycle

    def receive(self, event: WorkerEvent) -> None:
        """Take in one event: keep what it says, log a failure once; an ``"exit"`` ends the run."""
        worker = self.worker
        kind = event.kind
        if event.pid and self.pid is None:
            self.pid = event.pid
        if kind == "error" and event.error is not None:
            if self.error is None:
                self.error = event.error
            logger.error(
                "worker %r failed in %s: %s\n%s",
                worker.name,
                event.error.phase,
                event.error.message or event.error.type_name,
                event.error.traceback.rstrip("\n"),
                extra=self._lifecycle_extra("error"),
            )
        elif kind == "startup":
            self.started_reported = True
            logger.info("worker %r started (pid %d)", worker.name, event.pid, extra=self._lifecycle_extra("startup"))
        elif kind == "stopping":  # also when a process worker's child stopped itself
            signum = event.data.get("signal")
            if signum is None:
                worker._stop_requested = True
            else:  # a signal from outside the server stopped it: not a stop anyone here asked for
                self.stop_signal = signal_name(signum)
            worker._running = False
        elif kind == "stack":
            self.stack_pending = False
            self.log_stack(event.pid, event.data["stack"])
            then, self.after_stack = self.after_stack, None
            if then is not None:
                then()
        elif kind == "shutdown":
            duration = event.data.get("duration")
            self.teardown_duration = duration if isinstance(duration, float) else None
        elif kind == "exit":
            self.end(event.data.get("exitcode"), reason=event.data.get("reason"))

    def _lifecycle_extra(self, kind: str) -> dict[str, str]:
        """The fields of the log record of one of the worker's lifecycle events (docs/plugins.md, "Log records")."""
        return {**log_extra(self.worker.name), "spoc_event": kind}

    def log_stack(self, pid: int, text: str) -> None:
        """Log the stacks the worker's body is at (a dump's answer), whole, headed by its name and pid."""
        worker = self.worker
        logger.warning(
            "stack of worker %r (%s, pid %d):\n%s",
            worker.name,
            worker.backend,
            pid,
            text.rstrip("\n"),
            extra=log_extra(worker.name),
        )
        waiters, self.stack_waiters = self.stack_waiters, []
        for waiter in waiters:
            waiter(text)

    def end(self, exitcode: int | None, *, reason: str | None = None) -> WorkerExit:
        """End the run: build its `WorkerExit` (the one place it is built), log how it ended, set `finished`.

        From its ``"exit"`` event (`WorkerChannel.exited`), or from the server giving up on a thread that
        would not stop (`forced`). A second call returns the first's.
        """
        if self.exit_info is not None:
            return self.exit_info
        worker = self.worker
        worker._running = False
        if self.error is not None:
            self.error.release_frames()  # the record outlives the worker; its frames must not keep the worker alive
        info = WorkerExit(
            worker=worker.name,
            exitcode=exitcode,
            error=self.error,
            stop_requested=worker._stop_requested,
            forced=self.forced,
            stop_signal=self.stop_signal,
            restarts=worker.restarts,
            teardown_duration=self.teardown_duration,
            reason=reason,
        )
        self.exit_info = info
        self._log_end(info)
        self.finished.set()
        return info

    def _log_end(self, info: WorkerExit) -> None:
        name, extra = self.worker.name, self._lifecycle_extra("exit")
        teardown_ran = info.teardown_duration is not None
        if info.outcome == "killed" and info.signal is not None and info.signal == info.stop_signal and teardown_ran:
            logger.error(
                "worker %r was stopped by %s from outside its server (a stop the server did not ask for); "
                "its teardown ran",
                name,
                info.signal,
                extra=extra,
            )
        elif info.outcome == "killed" and info.signal is not None and (info.stop_signal or info.stop_requested):
            logger.error(
                "worker %r was killed by %s while it was stopping: its teardown did not run",
                name,
                info.signal,
                extra=extra,
            )
        elif info.reason is not None:
            logger.error("worker %r ended from outside its body: %s", name, info.reason, extra=extra)
        elif info.outcome == "killed" and info.signal is not None:
            logger.error("worker %r was killed by %s", name, info.signal, extra=extra)
        elif info.outcome == "failed" and self.error is None:
            logger.error("worker %r exited with code %s", name, info.exitcode, extra=extra)
        else:
            logger.info("worker %r ended (%s)", name, info.outcome, extra=extra)
