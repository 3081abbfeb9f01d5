"""The fds the server's plugins give a worker's process as its stdout and stderr (``worker_stdio``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import _fds
from ._log_extra import log_extra

if TYPE_CHECKING:
    from ._backend import WorkerChannel
    from ._plugins import Plugins
    from ._server import Server

__all__ = ["worker_stdio"]

logger = logging.getLogger("spoc")


def worker_stdio(plugins: Plugins, server: Server, channel: WorkerChannel) -> dict[int, int]:
    """The fd numbers (1, 2) and fds the plugins' ``worker_stdio`` give `channel`'s worker; the first to give a
    number has it, the others' fds are closed, and a result that is no such mapping is logged and ignored."""
    if "worker_stdio" not in plugins.implemented:
        return {}
    worker = channel.worker
    chosen: dict[int, tuple[str, int]] = {}
    for plugin, result in plugins.collect("worker_stdio", server=server, worker=worker, channel=channel):
        if not isinstance(result, Mapping) or not all(
            number in (1, 2) and isinstance(fd, int) and fd >= 0 for number, fd in result.items()
        ):
            logger.error(
                "spoc plugin %r: worker_stdio returned %r for worker %r; return a mapping of 1 (stdout) "
                "and 2 (stderr) to open fds, or None. Ignored",
                plugin,
                result,
                worker.name,
                extra=log_extra(worker.name, server=server.name),
            )
            if isinstance(result, Mapping):
                _fds.close_quietly(fd for fd in result.values() if isinstance(fd, int) and fd >= 0)
            continue
        for number, fd in result.items():
            if number in chosen:
                logger.warning(
                    "worker %r: spoc plugins %r and %r both give its fd %d (worker_stdio); %r has it",
                    worker.name,
                    chosen[number][0],
                    plugin,
                    number,
                    chosen[number][0],
                    extra=log_extra(worker.name, server=server.name),
                )
                _fds.close_quietly([fd])
            else:
                chosen[number] = (plugin, fd)
    return {number: fd for number, (_, fd) in sorted(chosen.items())}
