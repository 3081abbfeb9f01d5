"""A server's workers stopped on request (`Server.stop_worker`): each stops gracefully, within the server's
shutdown timeout, and stays stopped, the server running on, until `Server.start_worker` starts it again.

`Held` is a part of `Server` kept in a module of its own, like `Replacements`: it acts through the server's
lock, monitor and run records.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ._overdue import end_overdue

if TYPE_CHECKING:
    from ._run import WorkerRun
    from ._server import Server
    from ._worker import AbstractWorker

__all__ = ["Held"]


class Held:
    """The workers `Server.stop_worker` stopped: those still stopping, and the names kept stopped."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._stopping: dict[str, AbstractWorker] = {}  # asked to stop, until their worker_exited hooks have run
        self._names: set[str] = set()  # kept stopped: run_forever() runs on while one is

    def stop(self, worker: AbstractWorker) -> bool:
        """Stop running `worker` and keep it stopped; False when it is not running, is stopping already (for any
        cause) or the server is shutting down (under the server's lock)."""
        server = self._server
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
            or server.stopped_by(worker) is not None
        ):
            return False
        self._stopping[worker.name] = worker
        self._names.add(worker.name)
        server._monitor.call_later(server.shutdown_timeout, functools.partial(self._overdue, worker))
        return True

    def stops(self, worker: AbstractWorker) -> bool:
        """Whether `stop` stopped `worker` and its ``worker_exited`` hooks have not all run yet (under the lock)."""
        return self._stopping.get(worker.name) is worker

    def keeps(self, name: str) -> bool:
        """Whether the worker `name` is kept stopped (under the lock)."""
        return name in self._names

    def keeps_any(self) -> bool:
        """Whether a worker is kept stopped: `run_forever()` then runs on (under the lock)."""
        return bool(self._names)

    def release(self, name: str) -> None:
        """The worker `name` starts again (`Server.start_worker`), or left the server (under the lock)."""
        self._names.discard(name)

    def worker_ended(self, worker: AbstractWorker) -> None:
        """`worker` has ended and its ``worker_exited`` hooks have run."""
        if worker.name in self._stopping:
            with self._server._lock:
                if self._stopping.get(worker.name) is worker:
                    del self._stopping[worker.name]

    def _overdue(self, worker: AbstractWorker) -> None:
        """`shutdown_timeout` after `stop` asked `worker` to stop: end it as a shutdown would."""
        still_late = functools.partial(self._still_stopping, worker)
        run = still_late()
        if run is not None:
            end_overdue(self._server, run, "the stop", "it stays stopped", still_late)

    def _still_stopping(self, worker: AbstractWorker) -> WorkerRun | None:
        server = self._server
        with server._lock:
            run = server._runs.get(worker.name)
            if not self.stops(worker) or run is None or run.worker is not worker or server._shutting_down:
                return None
            return run if worker.exit_info is None else None
