"""What a log record about one worker carries, so that a handler can attribute it to the worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._worker import AbstractWorker

__all__ = ["WORKER_FIELD", "log_extra"]

WORKER_FIELD = "spoc_worker"
"""The attribute of a log record that names the worker it is about."""


def log_extra(worker: AbstractWorker | str) -> dict[str, str]:
    """The ``extra=`` of a log record about `worker` (the worker, or its name): ``{"spoc_worker": name}``.

    Every record spoc logs about a worker carries it, and so should a
    plugin's: ``logger.warning("worker %r is slow", w.name,
    extra=spoc.log_extra(w))``. spoc-plugin-logging writes it as the record's
    ``worker`` field.
    """
    return {WORKER_FIELD: worker if isinstance(worker, str) else worker.name}
