"""The plugin the ``spoc`` entry point names: it checks stream workers' settings before they start."""

from __future__ import annotations

from spoc import AbstractWorker, Server, hookimpl

from ._worker import StreamWorker

__all__ = ["RedisPlugin", "plugin"]


class RedisPlugin:
    """Refuses a `StreamWorker` with a bad setting before any worker starts, naming the worker, the setting
    and its value; tells each stream worker its server's name (part of its default consumer name). Any
    other worker is left alone."""

    name = "redis"

    @hookimpl
    def worker_check(self, server: Server, worker: AbstractWorker) -> None:
        if isinstance(worker, StreamWorker):
            worker.stream_settings(server.name)
            worker._spoc_redis_server = server.name  # type: ignore[attr-defined]


plugin = RedisPlugin()
