"""The repository's examples/redis_jobs.py runs as written: jobs flow, fail, retry, dead-letter; Ctrl+C drains."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import redis

from spoc.testing import App

ROOT = Path(__file__).resolve().parents[3]  # the spoc repository
EXAMPLE = ROOT / "examples" / "redis_jobs.py"


@pytest.mark.timeout(90)
def test_the_redis_demo_runs(spoc_app: type[App], redis_url: str, client: redis.Redis) -> None:
    demo = spoc_app(script=EXAMPLE, cwd=EXAMPLE.parent, env={"SPOC_REDIS_URL": redis_url})
    demo.expect(r"Press Ctrl\+C to stop\.")
    dead: dict[str, dict[str, str]] = {}
    while len(dead) < 2:  # job 99, once from each group
        reply = client.xread({"demo-jobs:dead": max(dead, default="0")}, block=60_000)
        assert reply, f"{len(dead)} of 2 dead letters within 60s"
        dead.update(reply[0][1])
    demo.signal_group(signal.SIGINT)
    assert demo.wait(60) == 0, demo.stderr
    assert "group resizers: 0 pending" in demo.stdout and "group mailers: 0 pending" in demo.stdout
    assert "Shutdown clean (reason: signal)" in demo.stdout
    assert "failed on delivery 1" in demo.stderr  # retried
    assert "failed on delivery 3" in demo.stderr and "moves to 'demo-jobs:dead'" in demo.stderr
