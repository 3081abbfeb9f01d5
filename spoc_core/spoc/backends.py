"""What a backend author uses, in one place: ``from spoc.backends import Backend, WorkerChannel, ...``.

A backend runs the bodies of the workers that name it (docs/plugins.md,
"Writing a backend"): subclass `Backend`, return an instance from the hook
``backend_register``, start each body in `Backend.launch` and report through
its `WorkerChannel`; a body that runs in a process of its own elsewhere runs
its `HostedLife` there. The names are also importable from ``spoc``.
"""

from __future__ import annotations

from ._backend import KILL_GRACE, Backend, Runner, WorkerChannel
from ._errors import BackendError, WorkerStartError
from ._events import WorkerEvent, WorkerExit
from ._hosted import HostedLife

__all__ = [
    "KILL_GRACE",
    "Backend",
    "BackendError",
    "HostedLife",
    "Runner",
    "WorkerChannel",
    "WorkerEvent",
    "WorkerExit",
    "WorkerStartError",
]
