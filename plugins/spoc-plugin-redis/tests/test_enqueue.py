"""enqueue() and enqueue_async(): a job now, after a delay, or at a time; moved exactly once, within a second.

A delayed job's stream id says when it was moved: its first part is Redis's clock, in milliseconds, at the
XADD of the script that moved it. The delayed set is scored by the same clock.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import math
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from spoc.testing import App, ServerFactory
from spoc_redis import delayed_key, enqueue, enqueue_async
from stream_workers import ThreadConsumer, wait_done

HOST = Path(__file__).parent / "apps" / "host.py"
LATE = 1000  # milliseconds after its time by which a delayed job is in the stream (the promise)


def moved_at(entry_id: str) -> int:
    """Redis's clock (ms) when the entry was added."""
    return int(entry_id.split("-")[0])


def redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_a_job_now_is_in_the_stream_with_its_fields_from_sync_and_async_code(
    redis_url: str, client: redis.Redis
) -> None:
    first = enqueue("jobs", {"n": 1, "price": 2.5, "name": "a"}, redis_url=redis_url)
    second = asyncio.run(enqueue_async("jobs", {"n": "2"}, redis_url=redis_url))
    assert [(entry_id, fields) for entry_id, fields in client.xrange("jobs")] == [
        (first, {"n": "1", "price": "2.5", "name": "a"}),
        (second, {"n": "2"}),
    ]


def test_the_url_comes_from_spoc_redis_url(
    redis_url: str, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOC_REDIS_URL", redis_url)
    entry = enqueue("jobs", {"n": "1"})
    assert client.xrange("jobs") == [(entry, {"n": "1"})]


@pytest.mark.timeout(120)
def test_delayed_jobs_wait_then_are_done_within_a_second_of_their_time(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    server = spoc_server(ThreadConsumer("consumer", plugin_options={"redis_url": redis_url}))
    server.start()
    before = redis_ms(client)
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1.5)
    ids = [
        enqueue("jobs", {"n": "delay"}, delay=1.0, redis_url=redis_url),
        asyncio.run(enqueue_async("jobs", {"n": "async-delay"}, delay=1.0, redis_url=redis_url)),
        enqueue("jobs", {"n": "at"}, at=at, redis_url=redis_url),
        asyncio.run(enqueue_async("jobs", {"n": "async-at"}, at=at, redis_url=redis_url)),
    ]
    assert all(re.fullmatch(r"delayed-[0-9a-f]{32}", job) for job in ids) and len(set(ids)) == 4
    assert client.zcard(delayed_key("jobs")) == 4
    done = wait_done(client, 4)
    assert sorted(done) == ["async-at:1", "async-delay:1", "at:1", "delay:1"]
    due = {"delay": before + 1000, "async-delay": before + 1000, "at": math.floor(at.timestamp() * 1000)}
    due["async-at"] = due["at"]
    for entry_id, fields in client.xrange("jobs"):
        late = moved_at(entry_id) - due[fields["n"]]
        assert 0 <= late <= LATE + 50, f"job {fields['n']} was moved {late} ms after its time"  # 50: `before`
    assert client.zcard(delayed_key("jobs")) == 0


@pytest.mark.timeout(180)
def test_a_thousand_jobs_due_at_one_second_on_three_hosts_are_each_done_once_and_in_time(
    spoc_app: type[App], redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    record = tmp_path / "done.txt"
    env = {"SPOC_REDIS_URL": redis_url, "CLAIM_IDLE": "30"}
    hosts = {name: spoc_app(name, str(record), script=HOST, env=env) for name in ("host-a", "host-b", "host-c")}
    for app in hosts.values():
        app.expect(r"READY \S+ c1", timeout=60)
        app.expect(r"READY \S+ c2", timeout=60)
    due_s = math.ceil(time.time()) + 2  # a whole second, two or three from now
    at = datetime.datetime.fromtimestamp(due_s, datetime.timezone.utc)
    for n in range(1000):
        enqueue("jobs", {"n": str(n)}, at=at, redis_url=redis_url)
    assert redis_ms(client) < due_s * 1000, "enqueueing took too long to test the moving"
    seen = collections.Counter(item.split()[0] for item in wait_done(client, 1000))
    for app in hosts.values():
        app.signal_group(signal.SIGTERM)
    for name, app in hosts.items():
        assert app.wait() == 0, f"{name}\n{app.stderr}"
    done = collections.Counter(line.split()[0] for line in record.read_text().splitlines())
    assert set(done) == set(seen) == {str(n) for n in range(1000)}
    assert max(done.values()) == 1, [n for n, count in done.items() if count > 1]
    entries = client.xrange("jobs")
    assert len(entries) == 1000  # each moved once
    lateness = [moved_at(entry_id) - due_s * 1000 for entry_id, _ in entries]
    print(f"\nmoved {min(lateness)} to {max(lateness)} ms after their time")
    assert min(lateness) >= 0 and max(lateness) <= LATE
    assert client.zcard(delayed_key("jobs")) == 0


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (("", {"n": "1"}), {}, TypeError, "stream is the name of a stream, a non-empty str; got ''"),
        ((b"jobs", {"n": "1"}), {}, TypeError, "stream is the name of a stream"),
        (("jobs", {}), {}, TypeError, "fields is a non-empty dict of the job's fields"),
        (("jobs", [("n", "1")]), {}, TypeError, "fields is a non-empty dict"),
        (("jobs", {"n": [1]}), {}, TypeError, "field 'n' is list [1]; a field's value is a str, int or float"),
        (("jobs", {"n": True}), {}, TypeError, "field 'n' is bool True"),
        (("jobs", {1: "x"}), {}, TypeError, "a field's name is a non-empty str; got 1"),
        (("jobs", {"n": "1"}), {"delay": -1}, ValueError, "delay is a number of seconds >= 0; got -1"),
        (("jobs", {"n": "1"}), {"delay": math.inf}, ValueError, "delay is a number of seconds >= 0; got inf"),
        (("jobs", {"n": "1"}), {"delay": "5"}, ValueError, "delay is a number of seconds >= 0; got '5'"),
        (
            ("jobs", {"n": "1"}),
            {"delay": 1, "at": datetime.datetime.now(datetime.timezone.utc)},
            TypeError,
            "give delay (seconds from now) or at (a datetime), not both",
        ),
        (("jobs", {"n": "1"}), {"at": 1700000000}, TypeError, "at is a datetime; got int 1700000000"),
        (
            ("jobs", {"n": "1"}),
            {"at": datetime.datetime(2030, 1, 1, 12)},
            ValueError,
            "at=2030-01-01T12:00:00 has no time zone; give an aware datetime",
        ),
        (("jobs", {"n": "1"}), {"redis_url": ""}, TypeError, "redis_url is a redis:// URL; got ''"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], message: str, redis_url: str
) -> None:
    kwargs = {"redis_url": redis_url, **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        enqueue(*args, **kwargs)
    with pytest.raises(error, match=re.escape(message)):
        asyncio.run(enqueue_async(*args, **kwargs))


def test_a_delayed_job_not_written_by_enqueue_is_dropped_loudly(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client.zadd(delayed_key("jobs"), {"not json": 0, '["delayed-x",["n","ok"]]': 0})
    server = spoc_server(ThreadConsumer("consumer", plugin_options={"redis_url": redis_url}))
    server.start()
    assert wait_done(client, 1) == ["ok:1"]
    assert client.zcard(delayed_key("jobs")) == 0
    server.stop()
    server.join_all(30)
    assert "a delayed job of stream 'jobs' is not one enqueue() wrote" in caplog.text
    assert "not json" in caplog.text
