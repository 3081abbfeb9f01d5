"""``spoc redis stats`` and ``spoc redis dead``: a real stream's figures, its dead letters, requeued and dropped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from spoc.testing import ServerFactory
from stream_workers import Flaky

SPOC = str(Path(sys.executable).with_name("spoc"))
WAIT = 30


def spoc_redis(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SPOC, "redis", *args, "--redis-url", redis_url], capture_output=True, text=True, timeout=60, check=False
    )


def one_dead_letter(client: redis.Redis, redis_url: str, spoc_server: ServerFactory, n: str) -> str:
    """Have a worker dead-letter a job (``dead_on``); the job's id."""
    last = client.xrevrange("jobs:dead", count=1)
    job = client.xadd("jobs", {"n": n, "raise": "ValueError"})
    server = spoc_server(Flaky("flaky", plugin_options={"redis_url": redis_url, "dead_on": ValueError}))
    server.start()
    assert client.xread({"jobs:dead": last[0][0] if last else "0"}, block=WAIT * 1000)
    server.stop()
    assert server.join_all(WAIT) == []
    return str(job)


def test_stats_shows_the_backlog_pending_jobs_dead_letters_and_consumers(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    one_dead_letter(client, redis_url, spoc_server, "bad")
    for n in range(5):
        client.xadd("jobs", {"n": str(n)})
    client.xreadgroup("workers", "by-hand", {"jobs": ">"}, count=2)  # two pending, three not yet delivered
    result = spoc_redis(redis_url, "stats", "jobs", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["length"] == 6 and figures["dead_letters"] == 1 and figures["dead_letter_stream"] == "jobs:dead"
    (group,) = figures["groups"]
    assert (group["group"], group["backlog"], group["pending"]) == ("workers", 3, 2)
    assert group["oldest_pending_seconds"] >= 0
    consumers = {consumer["name"]: consumer for consumer in group["consumers"]}
    assert consumers["by-hand"]["pending"] == 2 and consumers["by-hand"]["idle_seconds"] >= 0
    text = spoc_redis(redis_url, "stats", "jobs", "--group", "workers")
    assert text.returncode == 0, text.stderr
    assert "stream 'jobs': 6 entries, 1 dead letters" in text.stdout
    assert "group 'workers': backlog 3, pending 2 (oldest " in text.stdout
    assert "by-hand: pending 2, idle " in text.stdout


def test_a_dead_letter_is_listed_requeued_and_then_done(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    job = one_dead_letter(client, redis_url, spoc_server, "bad")
    listed = spoc_redis(redis_url, "dead", "jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    (letter,) = json.loads(listed.stdout)
    assert letter["job"] == job and letter["stream"] == "jobs" and letter["deliveries"] == 1
    assert letter["error_type"] == "ValueError" and letter["error"] == "job bad"
    assert letter["fields"] == {"n": "bad", "raise": "ValueError"} and "Traceback" in letter["traceback"]
    text = spoc_redis(redis_url, "dead", "jobs")
    assert f"{letter['id']}  job {job} after 1 deliveries: ValueError: job bad" in text.stdout
    requeued = spoc_redis(redis_url, "dead", "jobs", "--requeue", job)  # by the job's id, or the letter's
    assert requeued.returncode == 0, requeued.stderr
    assert requeued.stdout.startswith(f"requeued {letter['id']} as job ")
    assert client.xlen("jobs:dead") == 0
    (_, (new_id, fields)) = client.xrange("jobs")
    assert fields == {"n": "bad", "raise": "ValueError"} and requeued.stdout.split()[-1] == new_id
    client.set("healed", "1")
    client.delete("done")
    spoc_server(Flaky("flaky", plugin_options={"redis_url": redis_url})).start()
    assert client.blpop(["done"], timeout=WAIT) == ("done", "bad:1")  # a new job: its deliveries start again


def test_dead_letters_are_dropped_or_all_requeued(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    one_dead_letter(client, redis_url, spoc_server, "a")
    one_dead_letter(client, redis_url, spoc_server, "b")
    one_dead_letter(client, redis_url, spoc_server, "c")
    first, *_ = (entry_id for entry_id, _ in client.xrange("jobs:dead"))
    dropped = spoc_redis(redis_url, "dead", "jobs", "--drop", first)
    assert dropped.returncode == 0 and dropped.stdout.strip() == f"dropped {first}", dropped.stderr
    every = spoc_redis(redis_url, "dead", "jobs", "--requeue", "all", "--json")
    assert every.returncode == 0, every.stderr
    assert len(json.loads(every.stdout)["requeued"]) == 2 and client.xlen("jobs:dead") == 0
    assert sorted(fields["n"] for _, fields in client.xrange("jobs")[-2:]) == ["b", "c"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("stats", "nope"), "spoc redis stats: there is no stream 'nope' in this Redis"),
        (("stats", "jobs", "--group", "other"), "stream 'jobs' has no group 'other' (its groups: 'workers')"),
        (("dead", "jobs", "--requeue", "1-1"), "no dead letter 1-1 in 'jobs:dead' (spoc redis dead jobs lists them)"),
        (("dead", "jobs", "--drop", "1-1", "2-2"), "no dead letter 1-1, 2-2 in 'jobs:dead'"),
    ],
)
def test_what_cannot_be_done_exits_1_with_the_reason(
    args: tuple[str, ...], message: str, redis_url: str, client: redis.Redis
) -> None:
    client.xgroup_create("jobs", "workers", id="0", mkstream=True)
    result = spoc_redis(redis_url, *args)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_redis_is_named_without_a_traceback() -> None:
    result = spoc_redis("redis://127.0.0.1:1/0", "stats", "jobs")
    assert result.returncode == 1
    assert result.stderr.startswith("spoc redis stats: Redis at redis://127.0.0.1:1/0: ConnectionError")
    assert "Traceback" not in result.stderr
