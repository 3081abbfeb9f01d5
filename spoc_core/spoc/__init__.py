"""spoc: background workers in threads and processes, supervised by a Server.

Subclass `ThreadWorker` or `ProcessWorker`, write ``main()`` (and optionally
``setup()``, ``teardown()``, ``lifecycle()``), add the workers to a `Server` and
call ``run_forever()``: SIGINT and SIGTERM shut everything down gracefully.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

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
from ._thread import ThreadWorker
from ._worker import AbstractWorker

try:
    __version__ = _version("spoc-core")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

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
    "__version__",
    "current_worker",
    "hookimpl",
    "log_extra",
    "run_async_safely",
    "set_uvloop_if_available",
    "start_helper_thread",
]
