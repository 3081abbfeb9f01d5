"""A stop that reaches each child twice (``timeout`` forwarding a group SIGTERM) lets the job in hand finish; a
worker cut off in the middle of jobs is named with them (issue 35, point 2). Real ``spoc run`` programs in their
own sessions against a real redis-server."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import redis

from spoc.testing import App

pytestmark = pytest.mark.timeout(120)

SHOP = Path(__file__).parent / "apps" / "shop.py"


def test_timeout_forwarding_a_group_sigterm_lets_the_job_finish(
    spoc_app: type[App], redis_url: str, client: redis.Redis, spoc_start_method: str
) -> None:
    command = ["timeout", "60", sys.executable, "-m", "spoc", "run", f"{SHOP}:server"]
    app = spoc_app(command=command, env={"SPOC_REDIS_URL": redis_url, "START_METHOD": spoc_start_method})
    app.expect(r"READY orders-1")
    job = client.xadd("orders", {"n": "1", "seconds": "1.5"})
    app.expect(r"JOB 1 1 ")
    app.signal_group(signal.SIGTERM)  # kill -TERM -PGID: timeout sends the group the SIGTERM again
    assert app.wait() == 0
    assert "DONE 1" in app.stdout
    assert "worker 'orders-1' ended (stopped)" in app.stderr
    assert client.xpending("orders", "shop")["pending"] == 0, f"job {job} was not acknowledged"


def test_a_worker_killed_at_the_deadline_names_the_jobs_it_held(
    spoc_app: type[App], redis_url: str, client: redis.Redis, spoc_start_method: str
) -> None:
    command = [sys.executable, "-m", "spoc", "run", "--shutdown-timeout", "1", f"{SHOP}:server"]
    app = spoc_app(command=command, env={"SPOC_REDIS_URL": redis_url, "START_METHOD": spoc_start_method})
    app.expect(r"READY orders-1")
    job = client.xadd("orders", {"n": "1", "seconds": "60"})
    app.expect(r"JOB 1 1 ")
    app.signal(signal.SIGTERM)
    assert app.wait() == 1
    assert "DONE 1" not in app.stdout
    assert (
        f"worker 'orders-1' ended (killed by SIGKILL) in the middle of 1 job(s) of stream 'orders': {job}; they "
        f"stay pending"
    ) in app.stderr
