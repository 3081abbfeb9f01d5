"""spoc: background workers in threads and processes, supervised by a Server.

Subclass `ThreadWorker` or `ProcessWorker`, write ``main()`` (and optionally
``setup()``, ``teardown()``, ``lifecycle()``), add the workers to a `Server` and
call ``run_forever()``: SIGINT and SIGTERM shut everything down gracefully.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._aio import run_async_safely, set_uvloop_if_available
    from ._backend import Backend, Runner, WorkerChannel
    from ._errors import BackendError, ErrorRecord, SpocError, SpocWarning, ThreadOnlyObjectWarning, WorkerStartError
    from ._events import WorkerEvent, WorkerExit
    from ._hosted import HostedLife
    from ._lifecycle import current_worker
    from ._log_extra import log_extra
    from ._plugins import PluginError, PluginInfo, hookimpl
    from ._process import ProcessWorker
    from ._scaling import ReplicaCount
    from ._server import Server, ServerExit
    from ._signals import start_helper_thread
    from ._stash import Stash, StashKey
    from ._status import WorkerState, WorkerStatus
    from ._thread import ThreadWorker
    from ._worker import AbstractWorker

# Imported on first use (PEP 562): ``spoc ctl`` and other light subcommands import `spoc.commands` and nothing
# else, and would otherwise pay a tenth of a second for pluggy, asyncio and multiprocessing before their first
# line (correctness: ``spoc ctl status`` answers within 100 ms, a Python start included).
_WHERE = {
    "AbstractWorker": "._worker",
    "Backend": "._backend",
    "BackendError": "._errors",
    "ErrorRecord": "._errors",
    "HostedLife": "._hosted",
    "PluginError": "._plugins",
    "PluginInfo": "._plugins",
    "ProcessWorker": "._process",
    "ReplicaCount": "._scaling",
    "Runner": "._backend",
    "Server": "._server",
    "ServerExit": "._server",
    "SpocError": "._errors",
    "SpocWarning": "._errors",
    "Stash": "._stash",
    "StashKey": "._stash",
    "ThreadOnlyObjectWarning": "._errors",
    "ThreadWorker": "._thread",
    "WorkerChannel": "._backend",
    "WorkerEvent": "._events",
    "WorkerExit": "._events",
    "WorkerStartError": "._errors",
    "WorkerState": "._status",
    "WorkerStatus": "._status",
    "current_worker": "._lifecycle",
    "hookimpl": "._plugins",
    "log_extra": "._log_extra",
    "run_async_safely": "._aio",
    "set_uvloop_if_available": "._aio",
    "start_helper_thread": "._signals",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("spoc-core")
        except PackageNotFoundError:  # running from a source tree that is not installed
            found = "0+unknown"
    elif name in _WHERE:
        found = getattr(importlib.import_module(_WHERE[name], __name__), name)
    else:
        raise AttributeError(f"module 'spoc' has no attribute {name!r}")
    globals()[name] = found
    return found


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AbstractWorker",
    "Backend",
    "BackendError",
    "ErrorRecord",
    "HostedLife",
    "PluginError",
    "PluginInfo",
    "ProcessWorker",
    "ReplicaCount",
    "Runner",
    "Server",
    "ServerExit",
    "SpocError",
    "SpocWarning",
    "Stash",
    "StashKey",
    "ThreadOnlyObjectWarning",
    "ThreadWorker",
    "WorkerChannel",
    "WorkerEvent",
    "WorkerExit",
    "WorkerStartError",
    "WorkerState",
    "WorkerStatus",
    "__version__",
    "current_worker",
    "hookimpl",
    "log_extra",
    "run_async_safely",
    "set_uvloop_if_available",
    "start_helper_thread",
]
