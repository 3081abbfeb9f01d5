"""The core's own backends, ``thread`` and ``process``, registered through ``backend_register`` like any plugin's.

Every server registers one first, as the plugin ``spoc.backends``
(it cannot be blocked: a server without it could run no worker of the core's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ._backend import Backend
from ._plugins import Plugins, hookimpl
from ._process import ProcessBackend
from ._thread import ThreadBackend

if TYPE_CHECKING:
    from ._server import Server

__all__ = ["NAME", "BuiltinBackends"]

NAME = "spoc.backends"


class BuiltinBackends:
    """The plugin ``spoc.backends`` of one server: its ``backend_register`` gives the core's two backends."""

    name = NAME

    def __init__(self, plugins: Plugins, may_start_workers_later: Callable[[], bool]) -> None:
        self._plugins = plugins
        self._may_start_workers_later = may_start_workers_later

    @hookimpl
    def backend_register(self, server: Server) -> list[Backend]:
        """The core's two backends, for `server`."""
        return [ProcessBackend(server, self._plugins, self._may_start_workers_later), ThreadBackend()]
