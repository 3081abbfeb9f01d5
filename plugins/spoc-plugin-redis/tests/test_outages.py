"""Redis going away is not a crash; an async handle() with many jobs in flight loses none of its failures."""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

import pytest
import redis

from conftest import RedisServer
from spoc import hookimpl
from spoc.testing import ServerFactory, log_lines
from spoc_redis import RECORD_TOPIC
from spoc_redis._consumer import _gone
from stream_workers import AsyncProcessConsumer, SleepyProcessConsumer, SleepyThreadConsumer

WAIT = 60


def drain(client: redis.Redis, count: int) -> list[str]:
    done = []
    while len({item.split(":")[0] for item in done}) < count:
        item = client.blpop(["done"], timeout=WAIT)
        assert item is not None, f"{len(done)} reports of {count} jobs within {WAIT}s: {sorted(done)}"
        done.append(item[1])
    return done


class DoneJobs:
    """The ids of the jobs the workers report done (their records), waited on as they come."""

    name = "done-jobs"

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.changed = threading.Condition()

    @hookimpl
    def worker_record(self, topic: str, data: dict[str, Any]) -> None:
        if topic == RECORD_TOPIC and data["outcome"] == "done":
            with self.changed:
                self.ids.add(data["job"])
                self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.ids) >= count, WAIT), f"{len(self.ids)} of {count} done"


@pytest.mark.persistent
def test_a_redis_restart_mid_run_fails_no_worker_and_every_job_is_done(
    redis_server: RedisServer, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    options = {"redis_url": redis_server.url}
    jobs = {client.xadd("jobs", {"n": str(n)}) for n in range(300)}
    done = DoneJobs()
    server = spoc_server(
        SleepyThreadConsumer("thread", plugin_options=options),
        SleepyProcessConsumer("process", plugin_options=options),
        plugins=[done],
    )
    with log_lines("spoc.redis", logging.INFO) as seen:
        server.start()
        done.wait_for(1)  # jobs are being done
        redis_server.stop()  # mid-run: jobs are in flight in both workers
        seen.wait_for("worker 'thread' lost Redis")
        redis_server.start()  # the same port, the same data
        seen.wait_for("worker 'thread': Redis is back")
        done.wait_for(300)
        server.stop()
        assert server.join_all(WAIT) == []
    assert done.ids == jobs
    assert all(worker.exit_info is not None and worker.exit_info.ok for worker in server.workers)
    assert sum("worker 'thread' lost Redis" in line for line in seen.lines) == 1  # one line per outage
    assert not [line for line in seen.lines if "failed" in line]  # an outage is no job's failure
    with redis.Redis.from_url(redis_server.url) as fresh:
        assert int(fresh.xpending("jobs", "workers")["pending"]) == 0


def test_an_async_handle_with_eight_jobs_in_flight_loses_no_failure(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    jobs = {}
    for n in range(200):
        fail = "always" if n % 20 == 0 else "first" if n % 3 == 0 else ""
        jobs[client.xadd("jobs", {"n": str(n), "fail": fail})] = fail
    worker = AsyncProcessConsumer("async", plugin_options={"redis_url": redis_url, "max_deliveries": 2})
    server = spoc_server(worker)
    server.start()
    done = drain(client, 190)  # all but the ten that always fail
    dead: dict[str, dict[str, str]] = {}
    while len(dead) < 10:
        reply = client.xread({"jobs:dead": max(dead, default="0")}, block=WAIT * 1000)
        assert reply, f"only {len(dead)} of 10 jobs reached the dead-letter stream"
        dead.update(reply[0][1])
    server.stop()
    assert server.join_all(WAIT) == []
    assert {entry["spoc_job_id"] for entry in dead.values()} == {i for i, fail in jobs.items() if fail == "always"}
    deliveries = collections.Counter(item.split(":")[1] for item in done)
    first = sum(1 for fail in jobs.values() if fail == "first")
    assert deliveries == {"1": 190 - first, "2": first}  # "first" jobs were done on their second delivery
    assert int(client.xpending("jobs", "workers")["pending"]) == 0


class Failures:
    """The workers' errors and starts, as the server's hooks see them."""

    name = "failures"

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.starts: list[str] = []

    @hookimpl
    def worker_error(self, worker: Any, error: Any) -> None:
        self.errors.append(f"{worker.name}: {error.type_name}: {error.message}")

    @hookimpl
    def worker_started(self, worker: Any) -> None:
        self.starts.append(worker.name)


@pytest.mark.parametrize("kind", ["thread", "process"])
@pytest.mark.parametrize("how", ["flushdb", "del", "xgroup-destroy"])
def test_a_stream_or_group_deleted_under_a_waiting_consumer_is_made_again_in_place(
    how: str, kind: str, redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    """FLUSHDB (or DEL of the stream) while a consumer blocks in XREADGROUP: Redis answers ``UNBLOCKED the stream key
    no longer exists``; between reads, the next call answers ``NOGROUP`` or ``ERR no such key``. The consumer
    makes the stream and its group again, with one warning, and goes on: it neither fails nor restarts."""
    options = {"redis_url": redis_url}
    first = client.xadd("jobs", {"n": "0"})
    done = DoneJobs()
    failures = Failures()
    consumer = SleepyThreadConsumer if kind == "thread" else SleepyProcessConsumer
    server = spoc_server(consumer(kind, plugin_options=options), plugins=[done, failures])
    with log_lines("spoc.redis", logging.WARNING) as seen:
        server.start()
        done.wait_for(1)  # the consumer is past its first read, and waits in the next
        if how == "flushdb":
            client.flushdb()
        elif how == "del":
            client.delete("jobs")
        else:
            client.xgroup_destroy("jobs", "workers")
        if kind == "thread":  # a process worker's line is logged in its child
            seen.wait_for("worker 'thread': ")
        after = {client.xadd("jobs", {"n": str(n)}) for n in range(1, 21)}
        done.wait_for(21)
        server.stop()
        assert server.join_all(WAIT) == []
    assert done.ids == {first, *after}
    assert failures.errors == [] and failures.starts == [kind]  # it neither failed nor restarted
    assert all(worker.exit_info is not None and worker.exit_info.ok for worker in server.workers)
    warnings = [line for line in seen.lines if line.startswith(f"worker {kind!r}: ")]
    if kind == "thread":
        assert len(warnings) == 1, seen.lines  # one warning
        assert "creating the stream and group 'workers' again" in warnings[0]


def test_redis_unblocks_a_waiting_read_of_a_deleted_stream_with_an_error_the_consumer_knows(
    redis_url: str, client: redis.Redis
) -> None:
    """The error a read blocked in XREADGROUP gets when its stream is deleted is one `_gone` recognises (the read
    is seen blocked before the stream is deleted: CLIENT LIST)."""
    client.xgroup_create("jobs", "workers", id="0", mkstream=True)
    errors: list[BaseException] = []
    reader = redis.Redis.from_url(redis_url, decode_responses=True)

    def read() -> None:
        try:
            reader.xreadgroup("workers", "c", {"jobs": ">"}, 1, 30_000)
        except redis.ResponseError as exc:
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT
        while not any(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") for c in client.client_list()):
            assert time.monotonic() < deadline, "the read never blocked"
            time.sleep(0.01)
        client.delete("jobs")
        thread.join(WAIT)
    finally:
        reader.close()
    (error,) = errors
    assert str(error).startswith("UNBLOCKED") and _gone(error) is not None
