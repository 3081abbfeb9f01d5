"""time_limit: a handle() still running past it is interrupted and its delivery fails like any other; a process
worker's child stuck in a C call is ended after time_limit_grace, and its worker recycled."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis

from spoc import AbstractWorker, Server
from spoc.testing import HookRecorder, ServerFactory
from spoc_redis import plugin
from stream_workers import AsyncOverruns, ProcessOverruns, ThreadOverruns, dead_letters, wait_done

pytestmark = pytest.mark.timeout(120)


def overruns(kind: str, **options: Any) -> AbstractWorker:
    if kind.startswith("process"):
        return ProcessOverruns("overruns", start_method=kind.partition("-")[2], plugin_options=options)
    return {"thread": ThreadOverruns, "async": AsyncOverruns}[kind]("overruns", plugin_options=options)


@pytest.mark.parametrize("kind", ["thread", "async", "process-fork", "process-spawn"])
def test_a_job_past_its_time_limit_fails_counts_toward_max_deliveries_and_the_others_go_on(
    kind: str, redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    client.xadd("jobs", {"n": "slow", "how": "loop"})
    client.xadd("jobs", {"n": "quick", "how": "quick"})
    options = {"redis_url": redis_url, "time_limit": 0.3, "max_deliveries": 2, "retry_backoff": (0, 0)}
    spoc_server(overruns(kind, **options), plugins=[plugin]).start()
    (dead,) = dead_letters(client, 1)
    assert dead["n"] == "slow" and dead["spoc_deliveries"] == "2"  # each overrun was a failed delivery
    assert (dead["spoc_error_type"], dead["spoc_error"]) == ("JobTimeLimit", "time limit of 0.3 s")
    assert wait_done(client, 1) == ["quick:1"]


def test_a_thread_in_a_c_call_is_said_to_be_unstoppable_and_fails_when_the_call_returns(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="spoc.redis")
    client.xadd("jobs", {"n": "napping", "how": "nap"})  # time.sleep(1.5): no Python code runs until it returns
    options = {"redis_url": redis_url, "time_limit": 0.3, "time_limit_grace": 0.3, "max_deliveries": 1}
    spoc_server(ThreadOverruns("overruns", plugin_options=options), plugins=[plugin]).start()
    (dead,) = dead_letters(client, 1)
    assert (dead["spoc_error_type"], dead["spoc_error"]) == ("JobTimeLimit", "time limit of 0.3 s")
    said = caplog.text
    assert "past its time limit of 0.3 s, in a call that does not come back to Python; a thread cannot be ended" in said
    assert said.index("a thread cannot be ended") < said.index("failed (delivery 1 of 1)")


@pytest.mark.parametrize("how", ["sleep", "select"])
def test_a_process_workers_job_stuck_in_a_c_call_is_ended_through_the_grace_and_its_worker_recycled(
    how: str,
    redis_url: str,
    client: redis.Redis,
    spoc_server: ServerFactory,
    spoc_hooks: HookRecorder,
) -> None:
    client.xadd("jobs", {"n": "stuck", "how": how})
    client.xadd("jobs", {"n": "quick", "how": "quick"})
    max_deliveries = 2  # stuck twice: two children ended, two recycles
    options = {"redis_url": redis_url, "time_limit": 0.3, "time_limit_grace": 0.5, "max_deliveries": max_deliveries}
    server = spoc_server(ProcessOverruns("overruns", plugin_options=options), plugins=[plugin])
    server.start()
    (dead,) = dead_letters(client, 1)
    assert dead["n"] == "stuck" and dead["spoc_deliveries"] == str(max_deliveries)
    assert (dead["spoc_error_type"], dead["spoc_error"]) == ("JobTimeLimit", "time limit of 0.3 s")
    (done,) = wait_done(client, 1)  # by the worker's next child, which took it back at once (a second delivery)
    assert done.startswith("quick:")
    for _ in range(max_deliveries):
        spoc_hooks.wait_for("worker_recycling", worker="overruns", reason="time_limit")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("time_limit", 0, "time_limit=0 must be a number of seconds > 0, or None for no limit"),
        ("time_limit_grace", "soon", "time_limit_grace='soon' must be a number of seconds > 0"),
    ],
)
def test_a_bad_time_limit_is_refused_at_start(option: str, value: object, message: str, redis_url: str) -> None:
    server = Server("bad", plugins=[plugin])
    server.add_worker(ThreadOverruns("overruns", plugin_options={"redis_url": redis_url, option: value}))
    with pytest.raises(ValueError, match=f"worker 'overruns' \\(ThreadOverruns\\): {message}"):
        server.start()
