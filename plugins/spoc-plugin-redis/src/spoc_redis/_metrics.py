"""Metrics of the jobs, when spoc-plugin-metrics is installed: a counter by outcome and a histogram of seconds.

Both carry the ``worker`` label spoc-plugin-metrics adds to every sample, so a
dashboard shows each consumer's jobs without any code of the user's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["count_job"]

try:
    from spoc_metrics import Counter, Histogram
except ImportError:  # the plugin is not installed: records only
    _jobs: Any = None
    _seconds: Any = None
else:
    _jobs = Counter("streamworker_jobs_total", "Jobs of a Redis stream, by outcome.", ["stream", "outcome"])
    _seconds = Histogram("streamworker_job_seconds", "Seconds handle() took, done or failed.", ["stream"])


def count_job(stream: str, outcome: str, seconds: float | None) -> None:
    if _jobs is None:
        return
    _jobs.labels(stream=stream, outcome=outcome).inc()
    if seconds is not None:
        _seconds.labels(stream=stream).observe(seconds)
