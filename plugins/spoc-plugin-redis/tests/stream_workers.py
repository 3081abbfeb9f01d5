"""Stream workers for the tests: importable by name, so that spawn and forkserver children find them.

Each records what it did in Redis itself (list ``done``: the job ids it finished), so a test waits with a
blocking pop on that list, whatever process the worker runs in.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import select
import signal
import socket
import time
from typing import Any

import redis

from spoc import ProcessWorker, ThreadWorker
from spoc_redis import Job, StreamWorker


def wait_done(client: redis.Redis, count: int, wait: float = 30) -> list[str]:
    """The ``n:deliveries`` of `count` jobs, as the workers report them done (a blocking pop: no polling), each
    within `wait` seconds (on a loaded machine)."""
    done = []
    for _ in range(count):
        item = client.blpop(["done"], timeout=wait)
        assert item is not None, f"only {len(done)} of {count} jobs were done within {wait}s: {done}"
        done.append(item[1])
    return done


def dead_letters(client: redis.Redis, count: int, wait: float = 30) -> list[dict[str, str]]:
    """The first `count` dead letters of ``jobs:dead``, waited for (`wait` seconds each, on a loaded machine)."""
    entries: list[Any] = []
    last = "0"
    while len(entries) < count:
        reply = client.xread({"jobs:dead": last}, block=int(wait * 1000))
        assert reply, f"only {len(entries)} of {count} dead letters within {wait}s"
        ((_, new),) = reply
        entries.extend(new)
        last = new[-1][0]
    return [fields for _, fields in entries]


class Records:
    """handle(): a job whose field ``fail`` is ``always``, or ``first`` on its first delivery, raises."""

    stream = "jobs"
    group = "workers"
    block = 0.2
    plugin_options: Any

    def record(self, job: Job) -> None:
        fail = job.fields.get("fail")
        if fail == "always" or (fail == "first" and job.deliveries == 1):
            raise ValueError(f"job {job.fields.get('n')} fails ({fail})")
        client = redis.Redis.from_url(self.plugin_options["redis_url"])
        try:
            client.rpush("done", f"{job.fields.get('n')}:{job.deliveries}")
        finally:
            client.close()


class SyncRecords(Records):
    def handle(self, job: Job) -> None:
        self.record(job)


class AsyncRecords(Records):
    async def handle(self, job: Job) -> None:
        await asyncio.sleep(0.001)
        await asyncio.get_running_loop().run_in_executor(None, self.record, job)


class ThreadConsumer(SyncRecords, StreamWorker, ThreadWorker):
    pass


class ProcessConsumer(SyncRecords, StreamWorker, ProcessWorker):
    pass


class AsyncThreadConsumer(AsyncRecords, StreamWorker, ThreadWorker):
    concurrency = 4


class AsyncProcessConsumer(AsyncRecords, StreamWorker, ProcessWorker):
    concurrency = 8


class Incrementing(StreamWorker, ThreadWorker):
    """handle(): one Redis write a job (an ``INCR`` of ``count``), as the benchmarks' jobs do; the job whose field
    ``last`` is set is also recorded in ``done``."""

    stream = "jobs"
    group = "workers"
    block = 0.2

    def setup(self) -> None:
        self.client = redis.Redis.from_url(self.plugin_options["redis_url"])

    def handle(self, job: Job) -> None:
        self.client.incr("count")
        if job.fields.get("last"):
            self.client.rpush("done", job.fields["n"])

    def teardown(self) -> None:
        self.client.close()


class HeldBack(Records, StreamWorker, ThreadWorker):
    """async handle(), two jobs at once: a job whose field ``hold`` is set waits for an item on the list
    ``release``; any other is recorded in ``done`` at once."""

    concurrency = 2

    async def handle(self, job: Job) -> None:
        if job.fields.get("hold"):
            client = redis.Redis.from_url(self.plugin_options["redis_url"], socket_timeout=None)
            try:
                await asyncio.get_running_loop().run_in_executor(None, client.blpop, ["release"], 60)
            finally:
                client.close()
        else:
            await asyncio.get_running_loop().run_in_executor(None, self.record, job)


class Sleepy:
    """handle() takes a few milliseconds and needs nothing but time: a Redis outage lands while jobs are in flight,
    and none of them fails because of it."""

    stream = "jobs"
    group = "workers"
    block = 0.2

    def handle(self, job: Job) -> None:
        time.sleep(0.005)


class SleepyThreadConsumer(Sleepy, StreamWorker, ThreadWorker):
    pass


class SleepyProcessConsumer(Sleepy, StreamWorker, ProcessWorker):
    pass


class Quick(StreamWorker, ProcessWorker):
    """handle() does nothing, but for the job whose field ``last`` is set, which it records in ``done``."""

    stream = "jobs"
    group = "workers"
    block = 0.2

    def handle(self, job: Job) -> None:
        if job.fields.get("last"):
            client = redis.Redis.from_url(self.plugin_options["redis_url"])
            try:
                client.rpush("done", job.fields["n"])
            finally:
                client.close()


class Poisoned(SyncRecords):
    """handle(): a job whose field ``poison`` is set kills its own process (as a segfault or the OOM killer would);
    any other is recorded done."""

    claim_idle = 1.0
    max_deliveries = 3

    def handle(self, job: Job) -> None:
        if job.fields.get("poison"):
            os.kill(os.getpid(), signal.SIGKILL)
        self.record(job)


class PoisonedProcessConsumer(Poisoned, StreamWorker, ProcessWorker):
    pass


class PoisonedThreadConsumer(Poisoned, StreamWorker, ThreadWorker):
    """Its poison job kills the whole server's process."""


class PoisonedAsyncProcessConsumer(Poisoned, StreamWorker, ProcessWorker):
    concurrency = 8

    async def handle(self, job: Job) -> None:  # type: ignore[override]
        await asyncio.sleep(0.001)  # eight jobs in flight when the poison job kills the process
        if job.fields.get("poison"):
            os.kill(os.getpid(), signal.SIGKILL)
        await asyncio.get_running_loop().run_in_executor(None, self.record, job)


class Flaky(StreamWorker, ThreadWorker):
    """handle(): pushes ``<n> <delivery> <time>`` to the list ``tries``, then raises the exception its field
    ``raise`` names (a builtin), if any, unless the key ``healed`` is set; else pushes ``<n>:<delivery>`` to
    ``done``."""

    stream = "jobs"
    group = "workers"
    block = 0.2
    plugin_options: Any

    def setup(self) -> None:
        self.client = redis.Redis.from_url(self.plugin_options["redis_url"], decode_responses=True)

    def handle(self, job: Job) -> None:
        self.client.rpush("tries", f"{job.fields['n']} {job.deliveries} {time.time()}")
        name = job.fields.get("raise")
        if name and not self.client.exists("healed"):
            raise getattr(builtins, name)(f"job {job.fields['n']}")
        self.client.rpush("done", f"{job.fields['n']}:{job.deliveries}")

    def teardown(self) -> None:
        self.client.close()


class Held(StreamWorker, ThreadWorker):
    """Stays in its setup until stopped: its stream's jobs wait for it, as for a consumer not started yet."""

    stream = "held"
    group = "workers"
    connect_within = 0.2

    def setup(self) -> None:
        self.wait()

    def handle(self, job: Job) -> None:
        raise AssertionError(f"a held worker takes no job, got {job.id}")


class Overruns:
    """handle(): pushes ``<n> <delivery>`` to ``tries``, then overruns as its field ``how`` says (``loop``: Python
    code, interruptible; ``sleep``: ``time.sleep(60)``, one C call; ``select``: a ``select`` on a socket that
    never becomes readable; ``nap``: ``time.sleep(1.5)``; ``quick``: not at all), then pushes
    ``<n>:<delivery>`` to ``done``."""

    stream = "jobs"
    group = "workers"
    block = 0.2
    plugin_options: Any

    def tried(self, job: Job) -> redis.Redis:
        client = redis.Redis.from_url(self.plugin_options["redis_url"], decode_responses=True)
        client.rpush("tries", f"{job.fields['n']} {job.deliveries}")
        return client

    def overrun(self, job: Job) -> None:
        client = self.tried(job)
        try:
            how = job.fields["how"]
            if how == "loop":
                while True:
                    time.sleep(0.005)
            elif how == "sleep":
                time.sleep(60)
            elif how == "nap":
                time.sleep(1.5)
            elif how == "select":
                quiet, _other = socket.socketpair()
                select.select([quiet], [], [])
            client.rpush("done", f"{job.fields['n']}:{job.deliveries}")
        finally:
            client.close()


class ThreadOverruns(Overruns, StreamWorker, ThreadWorker):
    def handle(self, job: Job) -> None:
        self.overrun(job)


class ProcessOverruns(Overruns, StreamWorker, ProcessWorker):
    def handle(self, job: Job) -> None:
        self.overrun(job)


class AsyncOverruns(Overruns, StreamWorker, ThreadWorker):
    async def handle(self, job: Job) -> None:
        client = self.tried(job)
        try:
            if job.fields["how"] != "quick":
                await asyncio.sleep(60)
            client.rpush("done", f"{job.fields['n']}:{job.deliveries}")
        finally:
            client.close()
