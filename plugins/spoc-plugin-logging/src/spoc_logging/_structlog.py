"""structlog, when the program uses it: its events become `logging` records, with the worker's fields bound.

When structlog is installed and nobody configured it, the plugin configures
it to hand each event to the standard `logging` module, its fields as the
record's ``extra``, so that it reaches the one stream like any record, as
data. Either way, each event carries ``worker``, ``pid`` and ``phase``: in a
process worker's child, ``worker`` and ``pid`` are bound through
`structlog.contextvars`; `add_worker_fields` adds what is not bound (a thread
worker's, and the phase, which changes).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import MutableMapping
from typing import Any

import spoc

__all__ = ["add_worker_fields", "bind_in_child", "configure", "reset"]

_configured_here = False


def add_worker_fields(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: the worker the calling code belongs to, its pid and its phase."""
    worker = spoc.current_worker()
    if worker is not None:
        event.setdefault("worker", worker.name)
        event.setdefault("pid", os.getpid())
        phase = worker.lifecycle_phase
        if phase is not None:
            event.setdefault("phase", phase)
    return event


def _structlog() -> Any:
    """The structlog module, or None: it is not a dependency (typed Any, so that it need not be installed)."""
    if importlib.util.find_spec("structlog") is None:
        return None
    return importlib.import_module("structlog")


def configure() -> None:
    """Hand structlog's events to `logging`, unless the program configured structlog itself."""
    global _configured_here
    structlog = _structlog()
    if structlog is None or structlog.is_configured():
        return
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, add_worker_fields, structlog.stdlib.render_to_log_kwargs],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    _configured_here = True


def reset() -> None:
    """Undo `configure` (the last server the plugin served has stopped)."""
    global _configured_here
    structlog = _structlog() if _configured_here else None
    if structlog is not None:
        structlog.reset_defaults()
    _configured_here = False


def bind_in_child(worker: spoc.AbstractWorker) -> None:
    """In a process worker's child: `configure`, and bind the worker's name and pid for its whole life."""
    structlog = _structlog()
    if structlog is None:
        return
    configure()
    structlog.contextvars.bind_contextvars(worker=worker.name, pid=os.getpid())
