"""spoc-plugin-redis: job consumers on Redis Streams (see the docs page "Redis Streams").

The names that need redis (`StreamWorker`, `Job`, `enqueue`, ...) are imported when first used: the plugin, which the
``spoc`` entry point loads in every server, does not import redis until a server has a stream worker.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._plugin import RedisPlugin, plugin
from ._settings import DEFAULT_URL, URL_ENV, Settings
from ._topics import RECORD_TOPIC

if TYPE_CHECKING:
    from ._consumer import Job, RedisUnreachable
    from ._enqueue import delayed_key, enqueue, enqueue_async
    from ._limit import JobTimeLimit
    from ._scheduled import ScheduledWorker
    from ._worker import KilledItsConsumer, StreamWorker

__all__ = [
    "DEFAULT_URL",
    "RECORD_TOPIC",
    "URL_ENV",
    "Job",
    "JobTimeLimit",
    "KilledItsConsumer",
    "RedisPlugin",
    "RedisUnreachable",
    "ScheduledWorker",
    "Settings",
    "StreamWorker",
    "delayed_key",
    "enqueue",
    "enqueue_async",
    "plugin",
]

_LAZY = {
    "Job": "._consumer",
    "RedisUnreachable": "._consumer",
    "JobTimeLimit": "._limit",
    "KilledItsConsumer": "._worker",
    "ScheduledWorker": "._scheduled",
    "StreamWorker": "._worker",
    "delayed_key": "._enqueue",
    "enqueue": "._enqueue",
    "enqueue_async": "._enqueue",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
