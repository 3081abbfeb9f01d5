"""A job that kills its consumer (a segfault, the OOM killer) is dead-lettered alone: the jobs read with it, or in
flight beside it, are done, exactly once."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
import redis

from spoc.testing import App, ServerFactory
from spoc_restart import Supervisor
from stream_workers import PoisonedAsyncProcessConsumer, PoisonedProcessConsumer

WAIT = 60
GOOD = 200
THREAD_APP = Path(__file__).parent / "apps" / "poisoned_thread.py"


def add_jobs(client: redis.Redis) -> str:
    """200 good jobs with one poison job among them; return the poison job's id."""
    for n in range(GOOD // 2):
        client.xadd("jobs", {"n": str(n)})
    poison = client.xadd("jobs", {"n": "poison", "poison": "1"})
    for n in range(GOOD // 2, GOOD):
        client.xadd("jobs", {"n": str(n)})
    return str(poison)


def drain_done(client: redis.Redis) -> list[str]:
    """The ``n:deliveries`` the consumers report, until every good job has been reported (a blocking pop)."""
    done: list[str] = []
    while len({item.split(":")[0] for item in done}) < GOOD:
        item = client.blpop(["done"], timeout=WAIT)
        assert item is not None, f"{len({i.split(':')[0] for i in done})} of {GOOD} good jobs done within {WAIT}s"
        done.append(item[1])
    return done


def dead_letters(client: redis.Redis, count: int) -> dict[str, dict[str, str]]:
    dead: dict[str, dict[str, str]] = {}
    while len(dead) < count:
        reply = client.xread({"jobs:dead": max(dead, default="0")}, block=WAIT * 1000)
        assert reply, f"only {len(dead)} of {count} jobs reached the dead-letter stream within {WAIT}s"
        dead.update(reply[0][1])
    return dead


def assert_only_the_poison_job_died(dead: dict[str, dict[str, str]], poison: str) -> None:
    (entry,) = dead.values()
    assert entry["spoc_job_id"] == poison
    assert entry["spoc_error_type"] == "KilledItsConsumer"
    assert entry["spoc_deliveries"] == "4"  # three deaths, then claimed once more: max_deliveries = 3
    assert "killed its consumer" in entry["spoc_error"]


@pytest.mark.parametrize("batch", [1, 5, 10])
@pytest.mark.parametrize("kind", ["process", "async-process"])
def test_a_job_that_kills_its_consumer_dead_letters_only_itself(
    kind: str, batch: int, redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    poison = add_jobs(client)
    options: dict[str, Any] = {"redis_url": redis_url, "batch": batch}
    consumer = PoisonedProcessConsumer if kind == "process" else PoisonedAsyncProcessConsumer
    server = spoc_server(consumer("consumer", plugin_options=options), plugins=[Supervisor()])
    server.start()
    done = drain_done(client)
    dead = dead_letters(client, 1)
    server.stop()
    assert server.join_all(WAIT) == []
    done += client.lrange("done", 0, -1)  # reported after the last good job's first report: done twice
    numbers = sorted(int(item.split(":")[0]) for item in done)
    if kind == "process":  # one job in hand at a time: the poison job alone was cut off
        assert numbers == list(range(GOOD))  # each exactly once
    else:  # the jobs in flight beside it when it killed the process were cut off too: retried (done again)
        assert sorted(set(numbers)) == list(range(GOOD))
        assert len(numbers) - GOOD <= 3 * (PoisonedAsyncProcessConsumer.concurrency - 1)  # three deaths
    assert_only_the_poison_job_died(dead, poison)
    assert "SIGKILL" in next(iter(dead.values()))["spoc_error"]  # the server noted how its consumer ended
    assert int(client.xpending("jobs", "workers")["pending"]) == 0
    assert client.xlen("jobs:dead") == 1


def test_a_thread_workers_job_that_kills_the_whole_server_is_dead_lettered_alone_by_the_next_servers(
    spoc_app: type[App], redis_url: str, client: redis.Redis
) -> None:
    """Nothing of the server is left to say what happened: each next server claims the dead one's jobs one at a
    time, so the poison job kills it alone, until it is dead-lettered; the jobs read with it are done (some of
    the jobs done just before a death twice: their acknowledgement died with the server)."""
    poison = add_jobs(client)
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    env = {"SPOC_REDIS_URL": redis_url, "PYTHONPATH": path}
    servers = 0
    while True:
        servers += 1
        assert servers <= 4, "the poison job was not dead-lettered by the fourth server"  # 3 deaths, max 3
        app = spoc_app(script=THREAD_APP, env=env)
        while not client.xread({"jobs:dead": "0"}, block=200) and app.proc.poll() is None:
            pass  # a blocking read of the dead-letter stream, 0.2 s at a time, while the server runs
        if app.proc.poll() is None:  # it dead-lettered the poison job: it runs on, and does the rest
            break
        assert app.wait() == -signal.SIGKILL, app.stderr[-2000:]
    assert servers == 4
    # The dead-lettering decided at the claim is logged, with the consumer the job came from (issue 37, point 3).
    app.expect(
        rf"job {re.escape(poison)} of stream 'jobs' was delivered 4 times and never done: its consumer '[^']+' "
        r"(was killed by SIGKILL|died) while handling it; it moves to 'jobs:dead'",
        stream="stderr",
    )
    drain_done(client)
    app.signal(signal.SIGTERM)
    assert app.wait(WAIT) == 0, app.stderr[-2000:]
    assert_only_the_poison_job_died(dead_letters(client, 1), poison)
    assert int(client.xpending("jobs", "workers")["pending"]) == 0
