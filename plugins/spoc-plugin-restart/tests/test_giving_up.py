"""When the supervisor gives up, by default: a worker that has never started, after a minute of failed
attempts; a worker that did start, never (an outage is ridden out, however long). See the README.

The decisions are tested on an injected clock that the workers move (each failed attempt takes `step`
seconds of it), so a minute of failures takes milliseconds; the process path and the real clock with
scaled-down settings; and the defaults in real time in test_defaults_in_real_time.py.
"""

from __future__ import annotations

import math
import threading

import pytest

from conftest import FakeClock
from restart_workers import FlakyProcess, JobFailsEveryThirdRunProcess, JobFailsEveryThirdRunThread, Outage, Steady
from spoc.testing import HookRecorder, ServerFactory
from spoc_restart import Backoff, Supervisor
from supervision import running

FAST = Backoff(initial=0.0, jitter=0.0)


@pytest.mark.parametrize("fail_in", ["setup", "main"])
def test_a_worker_that_never_starts_is_given_up_on_after_a_minute(
    spoc_server: ServerFactory, fake_clock: FakeClock, fail_in: str
) -> None:
    never = Outage("never", fake_clock, (-math.inf, math.inf), step=3.0, fail_in=fail_in)
    supervisor = Supervisor(backoff=FAST, clock=fake_clock)  # every default but the backoff's waits
    server = spoc_server(never, Steady("bystander"), plugins=[supervisor], allow_errors=True)
    outcome = server.run_forever(shutdown_timeout=10)
    assert outcome.exit_code == 1
    assert outcome.failure == (
        "worker 'never' has never started: 21 attempt(s) in a row failed over 60.0s (start_within=60); "
        f"its last error: ConnectionError: never: the service is down (in {fail_in})"
    )
    assert {e.worker: e.outcome for e in outcome.exits} == {"never": "failed", "bystander": "stopped"}
    status = supervisor.status(server)["never"]
    assert not status.has_started and status.failing_since == 1003.0


def test_a_30_second_outage_from_the_start_is_ridden_out(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, fake_clock: FakeClock
) -> None:
    start = fake_clock()
    outage = Outage("consumer", fake_clock, (start, start + 30), step=3.0)
    supervisor = Supervisor(backoff=FAST, clock=fake_clock)
    server = spoc_server(outage, plugins=[supervisor], allow_errors=True)
    server.start()
    back = running(spoc_hooks, "consumer", 10)  # attempts 0..9 fell in the outage
    assert fake_clock() - start == 30 and back["worker"].exit_info is None
    assert not spoc_hooks.of("server_stopping")


@pytest.mark.parametrize(("give_up_after", "gives_up"), [(None, False), (60.0, True)])
def test_a_worker_that_did_start_rides_out_any_outage_unless_told_otherwise(
    spoc_server: ServerFactory,
    spoc_hooks: HookRecorder,
    fake_clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    give_up_after: float | None,
    gives_up: bool,
) -> None:
    """It worked 100 s, then its service was down 10 minutes: 60 failed attempts of 10 s each."""
    lose = threading.Event()
    start = fake_clock()
    consumer = Outage("consumer", fake_clock, (start + 100, start + 700), step=10.0, lose=lose)
    supervisor = Supervisor(backoff=FAST, clock=fake_clock, give_up_after=give_up_after)
    server = spoc_server(consumer, plugins=[supervisor], allow_errors=True)
    server.start()
    running(spoc_hooks, "consumer", 0)  # its worker_started has been seen: it is up from `start` on
    fake_clock.advance(100)
    lose.set()
    if gives_up:
        spoc_hooks.wait_for("server_stopping")
        assert server.join_all(10) == []
        assert (
            "gives up: worker 'consumer' has failed at every attempt since it last ran: 7 attempt(s) in a row "
            "failed over 60.0s (give_up_after=60); its last error: ConnectionError: consumer: the service is down"
        ) in caplog.text
        status = supervisor.status(server)["consumer"]
        assert status.has_started and status.failing_since == start + 100
        assert server.workers[0].restarts == 6  # failures at +100 (its loss), +110, ... +160: 60 s
        return
    running(spoc_hooks, "consumer", 61)
    assert not spoc_hooks.of("server_stopping")


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_job_that_fails_every_third_run_never_takes_the_service_down(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, kind: str
) -> None:
    """Each run works a while before it fails: it started, so failing for longer than start_within is no
    reason to give up (scaled down: runs of 0.3 s, start_within=0.5 s, started_after=0.1 s)."""
    job = JobFailsEveryThirdRunThread("job") if kind == "thread" else JobFailsEveryThirdRunProcess("job")
    supervisor = Supervisor(backoff=FAST, start_within=0.5, started_after=0.1)
    server = spoc_server(job, plugins=[supervisor], allow_errors=True)
    server.start()
    running(spoc_hooks, "job", JobFailsEveryThirdRunThread.runs)
    assert not spoc_hooks.of("server_stopping")
    assert supervisor.status(server)["job"].has_started


def test_a_process_worker_that_never_starts_is_given_up_on_in_real_time(spoc_server: ServerFactory) -> None:
    """Scaled down: start_within=0.5 s, the backoff capped at 0.05 s."""
    supervisor = Supervisor(start_within=0.5, backoff=Backoff(initial=0.01, max=0.05))
    never = FlakyProcess("never", "setup", failures=10**6)
    outcome = spoc_server(never, plugins=[supervisor], allow_errors=True).run_forever(shutdown_timeout=10)
    assert outcome.exit_code == 1 and outcome.failure is not None
    assert outcome.failure.startswith("worker 'never' has never started: ")
    assert "(start_within=0.5); its last error: RuntimeError: never failed in setup" in outcome.failure


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"start_within": 0}, "start_within=0 must be a number of seconds > 0, or None to turn it off"),
        ({"give_up_after": "5m"}, "give_up_after='5m' must be a number of seconds > 0, or None to turn it off"),
        ({"started_after": -1}, "started_after=-1 must be a number of seconds >= 0"),
    ],
)
def test_bad_limits_are_refused_at_once(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Supervisor(**options)  # type: ignore[arg-type]
