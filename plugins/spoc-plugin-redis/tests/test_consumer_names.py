"""A worker's default consumer name is one per server process: the same across its restarts and reloads (issue 35,
point 4), so a fresh run takes back at once the jobs its last run held; a second copy of the service never shares
it. Real ``spoc run`` programs, each in its own session, with spoc-plugin-restart installed."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import pytest
import redis

from spoc.testing import App

pytestmark = pytest.mark.timeout(120)

SHOP = Path(__file__).parent / "apps" / "shop.py"


def run_shop(spoc_app: type[App], redis_url: str, start_method: str) -> App:
    return spoc_app(
        command=[sys.executable, "-m", "spoc", "run", f"{SHOP}:server"],
        env={"SPOC_REDIS_URL": redis_url, "START_METHOD": start_method},
    )


def consumers(client: redis.Redis, stream: str) -> dict[str, int]:
    """Each consumer of the group ``shop`` of `stream`, with the number of jobs it holds."""
    return {c["name"]: c["pending"] for c in client.xinfo_consumers(stream, "shop")}


def consumer_of(app: App, worker: str) -> str:
    return f"{socket.gethostname()}/shop/{worker}/{app.pid}"  # the server's pid: one name per server process


def test_a_restart_keeps_the_consumer_and_takes_back_its_job_at_once(
    spoc_app: type[App], redis_url: str, client: redis.Redis, spoc_start_method: str
) -> None:
    app = run_shop(spoc_app, redis_url, spoc_start_method)
    child = int(app.expect(r"READY orders-1 (\d+)")[0].group(1))
    client.xadd("orders", {"n": "1", "hang": "1"})
    app.expect(r"JOB 1 1 ")
    assert consumers(client, "orders") == {consumer_of(app, "orders-1"): 1}
    client.xadd("audit", {"n": "1"})
    app.expect(r"AUDITED 1")  # read, so a consumer of its group
    assert list(consumers(client, "audit")) == [consumer_of(app, "audit-1")]

    os.kill(child, signal.SIGKILL)  # the child alone, as the OOM killer would; spoc-plugin-restart restarts it
    fresh = int(app.expect(r"READY orders-1 (\d+)", count=2)[1].group(1))
    assert fresh != child
    app.expect(r"JOB 1 2 ", timeout=15)  # at once: its claim_idle (60 s) does not come into it
    app.expect(r"DONE 1")
    app.signal(signal.SIGTERM)
    assert app.wait() == 0  # restarted, the worker then stopped cleanly
    assert consumers(client, "orders") == {consumer_of(app, "orders-1"): 0}  # done and acknowledged, by the same


def test_a_reload_keeps_the_consumer_names(
    spoc_app: type[App], redis_url: str, client: redis.Redis, spoc_start_method: str
) -> None:
    app = run_shop(spoc_app, redis_url, spoc_start_method)
    app.expect(r"READY orders-1")
    client.xadd("orders", {"n": "1"})
    app.expect(r"DONE 1")
    app.signal(signal.SIGHUP)
    app.expect(r"reload done", stream="stderr")
    app.expect(r"READY orders-1", count=2)
    client.xadd("orders", {"n": "2"})
    client.xadd("audit", {"n": "2"})
    app.expect(r"DONE 2")
    app.expect(r"AUDITED 2")
    assert list(consumers(client, "orders")) == [consumer_of(app, "orders-1")]
    assert list(consumers(client, "audit")) == [consumer_of(app, "audit-1")]

    client.xadd("orders", {"n": "3", "hang": "1"})  # keeps the first copy's consumer busy
    app.expect(r"JOB 3 1 ")
    other = run_shop(spoc_app, redis_url, spoc_start_method)  # a second copy of the service on this host
    client.xadd("orders", {"n": "4"})
    other.expect(r"DONE 4")  # read by the second copy's consumer, the first one's being busy
    assert sorted(consumers(client, "orders")) == sorted([consumer_of(app, "orders-1"), consumer_of(other, "orders-1")])
    other.signal(signal.SIGTERM)
    assert other.wait() == 0
    app.signal(signal.SIGTERM)
    assert app.wait() == 1  # its hung job was cut off at the deadline
