"""Recycling's figure: a recycle of a fork process worker against a plain restart of the same worker.

- recycle: spoc-plugin-restart's ``max_jobs = 1`` (``recycle_jitter = 0``): each instance calls
  ``job_done()`` as its main() begins, which reaches its limit; from that moment (the child's clock, sent in a
  record just before) to the fresh instance's "startup" in the parent: the record to the server, the recycle's
  stop request to the child, its teardown and exit, the fresh fork from the fork server.
- restart: the same worker under ``restart_policy = "always"`` whose main() ends at once, cleanly; from that
  moment to the fresh instance's "startup": the supervisor's restart with zero backoff, the cheapest restart
  there is (no error to report, no stop to carry).

Both in one server each, in this process, taken in turns (`paired_series_medians`).
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from typing import Any

from spoc import ProcessWorker, Server, hookimpl

CYCLES = 20


def missing() -> str | None:
    """Why the figure cannot be measured here, or None."""
    try:
        import spoc_restart  # noqa: F401
    except ImportError:
        return "spoc-plugin-restart is not installed (nox -s bench installs it)"
    return None


class Target(ProcessWorker):
    """Says when its end begins (``bench.end``, the child's monotonic clock), then reaches its ``max_jobs`` (recycle)
    or ends at once (restart)."""

    max_jobs: int | None = None
    recycle_jitter = 0.0
    restart_policy = "always"

    def main(self) -> None:
        self.send_record("bench.end", at=time.monotonic())
        if self.max_jobs is not None:
            self.job_done()  # the limit: the server recycles it from here
            while not self.wait(60):
                pass


class Recycled(Target):
    max_jobs = 1


class Times:
    """When each instance's end began (its record), and when each startup reached the parent."""

    def __init__(self) -> None:
        self.ends: queue.Queue[float] = queue.Queue()
        self.starts: queue.Queue[float] = queue.Queue()

    @hookimpl
    def worker_record(self, topic: str, data: dict[str, Any]) -> None:
        if topic == "bench.end":
            self.ends.put(data["at"])

    @hookimpl
    def worker_started(self) -> None:
        self.starts.put(time.monotonic())


def cycle_latencies(kind: type[Target]) -> list[float]:
    """Seconds from each instance's end (the limit reached, or main() returning) to the next one's startup."""
    from spoc_restart import Backoff, Supervisor

    logging.getLogger("spoc").setLevel(logging.CRITICAL)  # a line per recycle or restart: the same for both
    times = Times()
    supervisor = Supervisor(start_within=None, backoff=Backoff(initial=0.0, jitter=0.0))
    server = Server(f"bench-{kind.__name__.lower()}", plugins=[supervisor, times])
    server.add_worker(kind("target", start_method="fork"))
    server.start()
    times.starts.get(timeout=30)
    latencies = []
    for _ in range(CYCLES):
        ended = times.ends.get(timeout=30)
        latencies.append(times.starts.get(timeout=30) - ended)
    server.stop()
    server.join_all(10)
    return latencies


def measure(rounds: int, row: Callable[..., None], paired_series_medians: Callable[..., tuple[float, float]]) -> int:
    why = missing()
    if why is not None:
        print(f"{'recycle vs restart':<42} skipped: {why}")
        return 0
    recycle_ms, restart_ms = paired_series_medians(
        rounds, 1e3, lambda: cycle_latencies(Recycled), lambda: cycle_latencies(Target)
    )
    ok = recycle_ms <= 1.2 * restart_ms
    row("recycle: limit -> fresh startup (fork)", recycle_ms, restart_ms, "ms", "<=1.2x a plain restart", ok)
    return int(not ok)
