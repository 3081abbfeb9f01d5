"""spoc-plugin-redis: job consumers on Redis Streams (see the docs page "Redis Streams")."""

from __future__ import annotations

from ._consumer import Job, RedisUnreachable
from ._plugin import RedisPlugin, plugin
from ._settings import DEFAULT_URL, URL_ENV, Settings
from ._worker import RECORD_TOPIC, KilledItsConsumer, StreamWorker

__all__ = [
    "DEFAULT_URL",
    "RECORD_TOPIC",
    "URL_ENV",
    "Job",
    "KilledItsConsumer",
    "RedisPlugin",
    "RedisUnreachable",
    "Settings",
    "StreamWorker",
    "plugin",
]
