"""Jobs are done and acknowledged, failures retried, then dead-lettered: thread, process and async workers."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import pytest
import redis

from spoc import Server
from spoc.testing import HookRecorder, ServerFactory
from spoc_redis import RECORD_TOPIC, _worker, plugin
from stream_workers import (
    AsyncProcessConsumer,
    AsyncThreadConsumer,
    HeldBack,
    Incrementing,
    ProcessConsumer,
    Quick,
    ThreadConsumer,
    wait_done,
)

WAIT = 30  # seconds any one job may take to be reported done, on a loaded machine


def add_jobs(client: redis.Redis, count: int, **fields: str) -> list[str]:
    return [client.xadd("jobs", {"n": str(n), **fields}) for n in range(count)]


def pending(client: redis.Redis) -> int:
    return int(client.xpending("jobs", "workers")["pending"])


def consumer(kind: str, redis_url: str, start_method: str = "fork", **options: Any) -> Any:
    options = {"redis_url": redis_url, **options}
    if kind == "thread":
        return ThreadConsumer("consumer", plugin_options=options)
    if kind == "async-thread":
        return AsyncThreadConsumer("consumer", plugin_options=options)
    if kind == "async-process":
        return AsyncProcessConsumer("consumer", start_method=start_method, plugin_options=options)
    return ProcessConsumer("consumer", start_method=start_method, plugin_options=options)


KINDS = ["thread", "process", "async-thread", "async-process"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_job_is_done_once_and_acknowledged(
    kind: str, redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    add_jobs(client, 50)
    server = spoc_server(consumer(kind, redis_url))
    server.start()
    done = wait_done(client, 50)
    assert sorted(done) == sorted(f"{n}:1" for n in range(50))
    server.stop()
    assert server.join_all(WAIT) == []
    assert pending(client) == 0
    assert client.llen("done") == 0  # nothing done twice


def test_fast_jobs_are_acknowledged_together_and_all_of_them_by_the_stop(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    add_jobs(client, 499)
    client.xadd("jobs", {"n": "499", "last": "yes"})
    server = spoc_server(Quick("quick", plugin_options={"redis_url": redis_url}))
    server.start()
    assert wait_done(client, 1) == ["499"]  # one consumer does the jobs in order: the other 499 are done
    server.stop()
    assert server.join_all(WAIT) == []
    assert pending(client) == 0
    acknowledgements = int(client.info("commandstats")["cmdstat_xack"]["calls"])
    print(f"\n500 jobs acknowledged in {acknowledgements} XACKs")
    assert acknowledgements < 500  # those done while one XACK was on its way went in the next


def test_the_jobs_of_a_batch_are_acknowledged_in_one_xack_once_all_are_done(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each job does a Redis round trip, so the acknowledger could run between any two: it waits for the batch."""
    monkeypatch.setattr(_worker, "ACK_LINGER", WAIT)  # no XACK for a part of a batch: only a whole one done
    add_jobs(client, 499)
    client.xadd("jobs", {"n": "499", "last": "yes"})
    server = spoc_server(Incrementing("count", plugin_options={"redis_url": redis_url}))
    server.start()
    assert wait_done(client, 1) == ["499"]
    server.stop()
    assert server.join_all(WAIT) == []
    assert pending(client) == 0 and client.get("count") == "500"
    stats = client.info("commandstats")
    reads, acknowledgements = stats["cmdstat_xreadgroup"]["calls"], stats["cmdstat_xack"]["calls"]
    print(f"\n500 jobs read in {reads} XREADGROUPs, acknowledged in {acknowledgements} XACKs")
    assert acknowledgements <= 50  # batch = 10: one XACK for one batch (or two, done while an XACK was out)


def test_a_job_done_beside_a_long_one_is_acknowledged_without_waiting_for_it(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    long = client.xadd("jobs", {"n": "0", "hold": "yes"})
    client.xadd("jobs", {"n": "1"})
    server = spoc_server(HeldBack("held", plugin_options={"redis_url": redis_url}))
    server.start()
    assert wait_done(client, 1) == ["1:1"]
    deadline = time.monotonic() + WAIT
    while pending(client) != 1:  # the quick job's XACK, ACK_LINGER after it was done (the other still runs)
        assert time.monotonic() < deadline, f"{pending(client)} jobs pending after {WAIT}s; expected 1"
        time.sleep(0.01)  # polling Redis's own count: no event to wait on
    assert [held["message_id"] for held in client.xpending_range("jobs", "workers", "-", "+", 10)] == [long]
    client.rpush("release", "now")
    server.stop()
    assert server.join_all(WAIT) == []
    assert pending(client) == 0


def test_process_workers_of_every_start_method(
    spoc_start_method: str, redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    add_jobs(client, 10)
    spoc_server(consumer("process", redis_url, spoc_start_method)).start()
    assert sorted(wait_done(client, 10)) == sorted(f"{n}:1" for n in range(10))


@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_job_is_retried_and_then_done(
    kind: str, redis_url: str, client: redis.Redis, spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    add_jobs(client, 3, fail="first")
    spoc_server(consumer(kind, redis_url)).start()
    assert sorted(wait_done(client, 3)) == ["0:2", "1:2", "2:2"]
    for outcome in ("failed", "retried", "done"):
        spoc_hooks.wait_for("worker_record", topic=RECORD_TOPIC, data={"outcome": outcome})


class Records(logging.Handler):
    """The log records themselves (their fields, not only their text), until one says `text`."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def wait_for(self, text: str) -> logging.LogRecord:
        with self.changed:
            assert self.changed.wait_for(lambda: any(text in r.getMessage() for r in self.records), WAIT), text
            return next(r for r in self.records if text in r.getMessage())


@pytest.mark.parametrize("kind", ["thread", "async-thread"])  # logged in this process: its records can be read
def test_a_job_failure_is_logged_with_the_job_stream_and_delivery_as_fields(
    kind: str, redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    """For a structured log: spoc-plugin-logging writes a record's extra fields as JSON fields (issue 37)."""
    (job,) = add_jobs(client, 1, fail="first")
    records = Records()
    logger = logging.getLogger("spoc.redis")
    logger.addHandler(records)
    try:
        spoc_server(consumer(kind, redis_url)).start()
        failed = records.wait_for("failed (delivery 1 of")
        assert wait_done(client, 1) == ["0:2"]
    finally:
        logger.removeHandler(records)
    fields = {name: getattr(failed, name, None) for name in ("job", "stream", "delivery", "spoc_worker")}
    assert fields == {"job": job, "stream": "jobs", "delivery": 1, "spoc_worker": "consumer"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_job_that_always_fails_moves_to_the_dead_letter_stream(
    kind: str, redis_url: str, client: redis.Redis, spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    (bad,) = add_jobs(client, 1, fail="always")
    add_jobs(client, 1)
    server = spoc_server(consumer(kind, redis_url, max_deliveries=2))
    server.start()
    spoc_hooks.wait_for("worker_record", topic=RECORD_TOPIC, data={"outcome": "dead"}, timeout=WAIT)
    ((_, entries),) = client.xread({"jobs:dead": "0"})
    ((_, dead),) = entries
    assert dead["spoc_job_id"] == bad and dead["spoc_deliveries"] == "2" and dead["fail"] == "always"
    assert dead["spoc_error_type"] == "ValueError" and "fails (always)" in dead["spoc_error"]
    assert "Traceback" in dead["spoc_traceback"]
    assert wait_done(client, 1) == ["0:1"]  # the good job: the worker goes on
    server.stop()
    assert server.join_all(WAIT) == []
    assert pending(client) == 0
    assert all(worker.exit_info is not None and worker.exit_info.ok for worker in server.workers)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("batch", 0, "batch=0 must be a whole number >= 1"),
        ("claim_idle", "soon", "claim_idle='soon' must be a number of seconds > 0"),
        ("stream", "", "stream='' must be a non-empty string"),
        ("concurrency", 4, "concurrency=4 needs an async def handle()"),
    ],
)
def test_a_bad_setting_is_refused_before_any_worker_starts(
    option: str, value: object, message: str, redis_url: str
) -> None:
    server = Server("bad", plugins=[plugin])
    server.add_worker(consumer("thread", redis_url, **{option: value}))
    with pytest.raises(ValueError, match=re.escape(f"worker 'consumer' (ThreadConsumer): {message}")):
        server.start()
    assert not server.workers[0].started
