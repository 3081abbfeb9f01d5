"""spoc-plugin-control: operate a running spoc service with ``spoc ctl``.

Installed, every server opens a Unix socket of its own (``Control``; see
docs/control.md) and answers ``spoc ctl ls``, ``status``, ``restart``,
``stop``, ``start``, ``scale``, ``reload`` and ``stacks`` over it, one JSON
object per line each way, for its own uid (and root) only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._paths import CONTROL_ENV, SOCKET_ENV, socket_folder
    from ._plugin import Control, plugin

__all__ = ["CONTROL_ENV", "SOCKET_ENV", "Control", "plugin", "socket_folder"]


def __getattr__(name: str) -> Any:
    # Imported on first use: ``spoc ctl`` loads this package and must not pay for spoc's server (speed: it
    # answers within 100 ms, a Python start included).
    if name in ("Control", "plugin"):
        from . import _plugin as module
    elif name in ("CONTROL_ENV", "SOCKET_ENV", "socket_folder"):
        from . import _paths as module  # type: ignore[no-redef]
    else:
        raise AttributeError(f"module 'spoc_control' has no attribute {name!r}")
    found = getattr(module, name)
    globals()[name] = found
    return found
