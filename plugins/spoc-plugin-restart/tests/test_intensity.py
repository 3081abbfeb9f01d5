"""Restart intensity: at most N restarts within T seconds, per worker and per server; past it, failure."""

from __future__ import annotations

import itertools
import re

from restart_workers import EndsAtOnce, FailsOnStop, FlakyProcess, FlakyThread, Steady
from spoc.testing import HookRecorder, ServerFactory
from spoc_restart import Backoff, Supervisor
from supervision import running

FAST = Backoff(initial=0.0, jitter=0.0)


def test_past_the_servers_intensity_the_server_stops_and_reports_failure(spoc_server: ServerFactory) -> None:
    supervisor = Supervisor(max_restarts=2, within=60, backoff=FAST)
    server = spoc_server(
        FlakyProcess("crashy", failures=99), Steady("bystander"), plugins=[supervisor], allow_errors=True
    )
    outcome = server.run_forever(shutdown_timeout=10)
    assert outcome.exit_code == 1 and outcome.reason == "stop"
    assert outcome.failure == (
        "worker 'crashy' failed after 2 restart(s) within 60s, the server's limit (max_restarts=2); "
        "its last error: RuntimeError: crashy failed in main, run 2 (in main)"
    )
    assert {e.worker: e.outcome for e in outcome.exits} == {"crashy": "failed", "bystander": "stopped"}
    assert server.workers[0].restarts == 2


def test_a_workers_own_intensity_is_counted_on_its_own(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    supervisor = Supervisor(max_restarts=None, backoff=FAST)
    crashy = FlakyThread("crashy", failures=99, plugin_options={"max_restarts": 1, "restart_within": 30})
    server = spoc_server(crashy, plugins=[supervisor], allow_errors=True)
    outcome = server.run_forever(shutdown_timeout=10)
    assert outcome.failure is not None
    assert re.match(
        r"worker 'crashy' failed after 1 restart\(s\) within 30s, the worker's limit \(max_restarts=1\)",
        outcome.failure,
    )


def test_a_clean_ending_worker_restarted_too_often_is_a_failure_too(spoc_server: ServerFactory) -> None:
    supervisor = Supervisor(policy="always", max_restarts=3, backoff=FAST)
    outcome = spoc_server(EndsAtOnce("loops"), plugins=[supervisor]).run_forever(shutdown_timeout=10)
    assert [e.outcome for e in outcome.exits] == ["clean"] and not outcome.ok
    assert outcome.failure is not None and "its last error: none reported (ended, exit code 0)" in outcome.failure


def test_restarts_spread_wider_than_the_window_never_add_up(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    ticks = itertools.count(0.0, 20.0)  # 20 s between any two readings: never two restarts within 10 s
    supervisor = Supervisor(max_restarts=1, within=10, backoff=FAST, clock=lambda: next(ticks))
    server = spoc_server(FlakyThread("flaky", failures=5), plugins=[supervisor], allow_errors=True)
    server.start()
    running(spoc_hooks, "flaky", 5)
    assert server.workers[0].restarts == 5


def test_no_restart_happens_during_shutdown(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    server = spoc_server(FailsOnStop("fails-on-stop"), plugins=[Supervisor(backoff=FAST)], allow_errors=True)
    server.start()
    spoc_hooks.wait_for("worker_record", worker="fails-on-stop", topic="test.running")
    server.stop()
    assert server.join_all(10) == []
    assert [c["exit_info"].outcome for c in spoc_hooks.of("worker_exited")] == ["failed"]
    assert len(spoc_hooks.of("worker_started")) == 1
