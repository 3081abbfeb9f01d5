"""Exponential backoff with jitter and a cap, reset after a stable uptime."""

from __future__ import annotations

import threading

import pytest

from conftest import FakeClock, Timeline
from restart_workers import FlakyThread, announce
from spoc.testing import HookRecorder, ServerFactory
from spoc_restart import Backoff, Supervisor
from supervision import running


def test_the_delay_doubles_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.1, factor=2.0, max=1.0, jitter=0.0)
    assert [round(backoff.delay(n, 0.5), 6) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff.delay(10_000, 0.5) == 1.0  # no overflow, however long the crash loop


def test_jitter_spreads_the_delay_and_never_passes_the_cap() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, max=3.0, jitter=0.25)
    assert backoff.delay(1, 0.0) == 0.75 and backoff.delay(1, 0.999999) == pytest.approx(1.25)
    assert backoff.delay(2, 0.999999) == pytest.approx(2.0 * 1.25) and backoff.delay(3, 0.999999) == 3.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial": -1}, "Backoff: initial=-1 must be a number of seconds >= 0"),
        ({"factor": 0.5}, "Backoff: factor=0.5 must be a number >= 1"),
        ({"jitter": 2}, "Backoff: jitter=2 must be a fraction between 0 and 1"),
        ({"max": float("inf")}, "Backoff: max=inf must be a number of seconds >= 0"),
    ],
)
def test_bad_backoff_settings_are_refused(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**options)  # type: ignore[arg-type]


def test_restarts_wait_the_backoff_for_real(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, timeline: Timeline
) -> None:
    supervisor = Supervisor(backoff=Backoff(initial=0.2, factor=2.0, jitter=0.0), max_restarts=None)
    server = spoc_server(FlakyThread("flaky", failures=3), plugins=[supervisor, timeline], allow_errors=True)
    server.start()
    running(spoc_hooks, "flaky", 3)
    gaps = timeline.gaps("flaky")
    assert len(gaps) == 3
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[2] >= 0.8  # never early; late only by the machine's load
    assert [round(s, 6) for s in supervisor_delays(supervisor, server)] == [0.2, 0.4, 0.8]


def supervisor_delays(supervisor: Supervisor, server: object) -> list[float]:
    return list(supervisor.status(server)["flaky"].delays)  # type: ignore[arg-type]


class FailsWhenTold(FlakyThread):
    """Fails at once on its first three runs; the fourth runs until the test tells it to fail; the rest run."""

    def __init__(self, name: str, fail: threading.Event) -> None:
        super().__init__(name, failures=3)
        self.fail = fail

    def main(self) -> None:
        if self.restarts < 3:
            super().main()
            return
        announce(self)
        if self.restarts > 3:
            while not self.wait(60):
                pass
            return
        self.fail.wait(30)
        raise RuntimeError("failed after a long, stable run")


def test_a_worker_that_stayed_up_starts_its_backoff_over(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, fake_clock: FakeClock
) -> None:
    backoff = Backoff(initial=0.01, factor=2.0, jitter=0.0, reset_after=60.0)
    supervisor = Supervisor(backoff=backoff, max_restarts=None, clock=fake_clock)
    fail = threading.Event()
    server = spoc_server(FailsWhenTold("flaky", fail), plugins=[supervisor], allow_errors=True)
    server.start()
    running(spoc_hooks, "flaky", 3)
    fake_clock.advance(61.0)  # its fourth run has been up for longer than reset_after
    fail.set()
    running(spoc_hooks, "flaky", 4)
    assert [round(d, 6) for d in supervisor.status(server)["flaky"].delays] == [0.01, 0.02, 0.04, 0.01]
    assert supervisor.status(server)["flaky"].consecutive_failures == 1
