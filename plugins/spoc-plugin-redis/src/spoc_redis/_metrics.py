"""Metrics, when spoc-plugin-metrics is installed: the jobs (a counter by outcome, a histogram of seconds) and
whether each consumer reaches Redis (a gauge).

All carry the ``worker`` label spoc-plugin-metrics adds to every sample, so a
dashboard shows each consumer's jobs without any code of the user's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from spoc import current_worker

__all__ = ["ConnectedGauge", "count_job"]

try:
    from spoc_metrics import Counter, Gauge, Histogram
except ImportError:  # the plugin is not installed: records only
    _jobs: Any = None
    _seconds: Any = None
    _connected: Any = None
else:
    _jobs = Counter("streamworker_jobs_total", "Jobs of a Redis stream, by outcome.", ["stream", "outcome"])
    _seconds = Histogram("streamworker_job_seconds", "Seconds handle() took, done or failed.", ["stream"])
    _connected = Gauge("streamworker_redis_connected", "1 while the worker's consumer reaches Redis, else 0.")


_bound: dict[tuple[str, str], tuple[Any, Any]] = {}
"""The counter and histogram of each (stream, outcome), bound once: `labels()` checks its arguments on every call
(throughput: half of a sample's cost, on the way of every job)."""


def count_job(stream: str, outcome: str, seconds: float | None) -> None:
    if _jobs is None:
        return
    bound = _bound.get((stream, outcome))
    if bound is None:  # two threads racing here bind equal metrics: a bound metric is only its label values
        bound = _bound[stream, outcome] = (_jobs.labels(stream=stream, outcome=outcome), _seconds.labels(stream=stream))
    jobs, job_seconds = bound
    jobs.inc()
    if seconds is not None:
        job_seconds.observe(seconds)


class ConnectedGauge:
    """``streamworker_redis_connected`` of one worker, set on each try to reach Redis (`set`, from any thread).

    A sample counts for the worker whose thread sets it: a thread worker's other threads (its consumer's
    keeper and acknowledger, an async worker's executor) hand the value to the worker's event loop, or leave
    it to the worker's own next try."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._value: bool | None = None

    def set(self, connected: bool) -> None:
        if _connected is None or connected is self._value:
            return
        if current_worker() is None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self.set, connected)
            return
        self._value = connected
        _connected.set(1 if connected else 0)
