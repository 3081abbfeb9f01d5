"""What a log record about one worker or server carries, so that a handler can attribute it, and `count`, for its
words."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._server import Server
    from ._worker import AbstractWorker

__all__ = ["SERVER_FIELD", "WORKER_FIELD", "count", "log_extra"]

WORKER_FIELD = "spoc_worker"
"""The attribute of a log record that names the worker it is about."""

SERVER_FIELD = "spoc_server"
"""The attribute of a log record that names the server it is about."""


def log_extra(worker: AbstractWorker | str | None = None, *, server: Server | str | None = None) -> dict[str, str]:
    """The ``extra=`` of a log record about `worker` and/or `server` (each the object, or its name):
    ``{"spoc_worker": name, "spoc_server": name}``, each only when given.

    Every record spoc logs about a worker or a server carries it, and so
    should a plugin's: ``logger.warning("worker %r is slow", w.name,
    extra=spoc.log_extra(w))``. spoc-plugin-logging writes them as the
    record's ``worker`` and ``server`` fields.
    """
    extra: dict[str, str] = {}
    if worker is not None:
        extra[WORKER_FIELD] = worker if isinstance(worker, str) else worker.name
    if server is not None:
        extra[SERVER_FIELD] = server if isinstance(server, str) else server.name
    return extra


def count(n: int, noun: str) -> str:
    """``"1 worker"``, ``"2 workers"``: counts in log lines read as English."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
