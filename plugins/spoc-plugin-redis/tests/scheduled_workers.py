"""Scheduled workers for the tests: importable by name, so that spawn and forkserver children find them.

Each pushes ``<at> <worker>`` to the Redis list ``ticks`` (its `at` as Unix seconds), so a test waits with a
blocking pop on that list, whatever process the worker runs in.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import redis

from spoc import ProcessWorker, ThreadWorker
from spoc_redis import ScheduledWorker


class Records:
    plugin_options: Any
    name: str

    def record(self, at: datetime) -> None:
        assert at.tzinfo is not None and at.utcoffset() is not None and not at.utcoffset()  # aware, UTC
        client = redis.Redis.from_url(self.plugin_options["redis_url"])
        try:
            client.rpush("ticks", f"{at.timestamp():.3f} {self.name}")
        finally:
            client.close()


class ThreadTicks(Records, ScheduledWorker, ThreadWorker):
    every = 0.2
    schedule_key = "shared"

    def tick(self, at: datetime) -> None:
        self.record(at)


class AsyncTicks(Records, ScheduledWorker, ThreadWorker):
    every = 0.2
    schedule_key = "shared"

    async def tick(self, at: datetime) -> None:
        await asyncio.sleep(0.001)
        await asyncio.get_running_loop().run_in_executor(None, self.record, at)


class ProcessTicks(Records, ScheduledWorker, ProcessWorker):
    every = 0.2
    schedule_key = "shared"

    def tick(self, at: datetime) -> None:
        self.record(at)


class Fails(Records, ScheduledWorker, ThreadWorker):
    every = 0.2

    def tick(self, at: datetime) -> None:
        self.record(at)
        raise ValueError("the report failed")
