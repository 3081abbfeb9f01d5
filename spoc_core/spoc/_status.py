"""What a server's workers are doing right now, one `WorkerStatus` each (`Server.status`): the one source for
``spoc ctl status``, a status page and a readiness probe, so that all of them say the same."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._errors import ErrorRecord
from ._events import WorkerExit

if TYPE_CHECKING:
    from ._server import Server
    from ._worker import AbstractWorker

__all__ = ["WorkerState", "WorkerStatus", "process_usage", "worker_statuses"]

WorkerState = Literal["starting", "running", "stopping", "waiting to restart", "given up", "stopped"]
"""Where a worker is in its life (`WorkerStatus.state`)."""

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class WorkerStatus:
    """One worker of a server, as it is now (`Server.status`).

    Attributes:
        name: the worker's name (a replica's: ``<worker>-<n>``).
        worker: the name it was added with (`AbstractWorker.base_name`).
        backend: its backend's name (``"thread"``, ``"process"``, ...).
        state: ``"starting"`` (its ``setup()`` runs), ``"running"``,
            ``"stopping"``, ``"waiting to restart"`` (a restart's delay runs),
            ``"given up"`` (it failed and nothing will start it again),
            or ``"stopped"`` (it ended cleanly, or `Server.stop_worker`
            stopped it).
        pid: the process its body runs in (the server's own for a thread
            worker), or None before it is known.
        since: when its current instance was started (``time.time()``), or None.
        restarts: how many times it was restarted (`AbstractWorker.restarts`).
        last_exit: how its current instance ended, else its previous one, or None.
        error: the last error of its current instance, else of its previous one, or None.
        rss: a process worker's resident memory in bytes, read from ``/proc`` now; None for a thread, or
            a body that runs on another host (a backend's).
        cpu: a process worker's CPU seconds (user and system), read with `rss`; None when `rss` is.
    """

    name: str
    worker: str
    backend: str
    state: WorkerState
    pid: int | None
    since: float | None
    restarts: int
    last_exit: WorkerExit | None
    error: ErrorRecord | None
    rss: int | None
    cpu: float | None

    def uptime(self, now: float | None = None) -> float | None:
        """Seconds since its current instance started, while it has not ended; else None."""
        if self.since is None or self.state in ("waiting to restart", "given up", "stopped"):
            return None
        return max(0.0, (time.time() if now is None else now) - self.since)

    @property
    def last_exit_line(self) -> str | None:
        """How it last ended, in one line (``"failed (exit code 1): ValueError: bad input"``), or None."""
        info = self.last_exit
        if info is None:
            return None
        how = f"signal {info.signal}" if info.signal else f"exit code {info.exitcode}"
        error = info.error or (self.error if self.state == "given up" else None)
        if error is None:
            return f"{info.outcome} ({how})"
        text = f"{error.type_name.rpartition('.')[2]}: {error.message}" if error.message else error.type_name
        return f"{info.outcome} ({how}) in {error.phase}: {text.splitlines()[0] if text else ''}"

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON-ready values (``spoc ctl status --json``, ``/status.json``): `since` in seconds
        since the epoch, ``uptime`` added, `last_exit` as `last_exit_line`, `error` as an object with
        ``type``, ``message``, ``phase`` and ``traceback``."""
        error = self.error
        error_json = None
        if error is not None:
            error_json = {"type": error.type_name, "message": error.message, "phase": error.phase}
            error_json["traceback"] = error.traceback
        return {
            "name": self.name,
            "worker": self.worker,
            "backend": self.backend,
            "state": self.state,
            "pid": self.pid,
            "since": self.since,
            "uptime": self.uptime(),
            "restarts": self.restarts,
            "last_exit": self.last_exit_line,
            "error": error_json,
            "rss": self.rss,
            "cpu": self.cpu,
        }


def process_usage(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, user and system; resident bytes) of process `pid`, or None when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text[text.rfind(b")") + 2 :].split()  # the command name may hold spaces and parentheses
    try:
        return (int(fields[11]) + int(fields[12])) / _TICKS, int(fields[21]) * _PAGE
    except (IndexError, ValueError):
        return None


def worker_statuses(server: Server) -> tuple[WorkerStatus, ...]:
    """Every worker of `server` now, in the order of `Server.workers` (the /proc reads outside its lock)."""
    with server._lock:
        found = [(worker, _state(server, worker)) for worker in server._workers.values()]
        for name, fresh in server._replacements.pending.items():  # its fresh instance waits: say so of it
            found = [(fresh, "waiting to restart") if w.name == name else (w, s) for w, s in found]
    return tuple(_status(worker, state) for worker, state in found)


def _state(server: Server, worker: AbstractWorker) -> WorkerState:
    run = worker._run
    info = worker.exit_info
    if info is None:
        if not worker.started:
            return "starting"
        if worker.stop_requested or run.stop_signal is not None or run.stopping_reported:
            return "stopping"
        return "running" if run.started_reported else "starting"
    if not run.exit_handled:  # its worker_exited hooks run: a supervisor may restart it
        return "stopping"
    if server._held.keeps(worker.name) or info.ok:
        return "stopped"
    return "given up"


def _status(worker: AbstractWorker, state: WorkerState) -> WorkerStatus:
    run = worker._run
    last_exit = worker.exit_info or worker.previous_exit
    error = run.error or (None if worker.previous_exit is None else worker.previous_exit.error)
    child: int | None = getattr(worker, "pid", None)  # a process worker's child, here, before any event too
    pid = child or run.pid  # else where its events come from: this process, or a backend's process elsewhere
    usage = None
    if child is not None and state not in ("waiting to restart", "given up", "stopped"):
        usage = process_usage(child)  # only a child of this host's: another host's pid means nothing in /proc
    return WorkerStatus(
        name=worker.name,
        worker=worker.base_name,
        backend=worker.backend,
        state=state,
        pid=pid,
        since=run.launched_at,
        restarts=worker.restarts,
        last_exit=last_exit,
        error=error,
        rss=None if usage is None else usage[1],
        cpu=None if usage is None else usage[0],
    )
