"""The worker API, at the import path the user guide uses: ``from spoc.workers import ...``."""

from __future__ import annotations

from . import AbstractWorker, ProcessWorker, Server, ServerExit, ThreadWorker, run_async_safely, set_uvloop_if_available

__all__ = [
    "AbstractWorker",
    "ProcessWorker",
    "Server",
    "ServerExit",
    "ThreadWorker",
    "run_async_safely",
    "set_uvloop_if_available",
]
