"""Shared fixtures: a clock the test moves by hand, a record of when each worker started and ended, and
spoc.testing's check that no test leaves a process or a thread behind."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

from spoc import hookimpl

__all__ = ["FakeClock", "Timeline", "fake_clock", "timeline"]


@pytest.fixture(autouse=True)
def _no_leftovers(spoc_no_leftovers: None) -> None:
    """No test may leave a process or a thread running (spoc.testing's check)."""


class FakeClock:
    """An injectable monotonic clock that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


class Timeline:
    """A plugin that notes the real time of each worker's start and end."""

    name = "timeline"

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []

    @hookimpl
    def worker_started(self, worker: Any) -> None:
        self.events.append(("started", worker.name, time.monotonic()))

    @hookimpl
    def worker_exited(self, worker: Any) -> None:
        self.events.append(("exited", worker.name, time.monotonic()))

    def gaps(self, name: str) -> list[float]:
        """Seconds from each end of `name` to its next start."""
        mine = [(kind, at) for kind, who, at in self.events if who == name]
        return [b[1] - a[1] for a, b in itertools.pairwise(mine) if a[0] == "exited" and b[0] == "started"]


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timeline() -> Timeline:
    return Timeline()
