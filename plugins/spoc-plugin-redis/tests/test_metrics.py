"""With spoc-plugin-metrics installed, a stream worker's jobs are metrics with no code of the user's.

Run where both plugins are installed (``nox -s together``); skipped where spoc-plugin-metrics is not.
"""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
import redis

from spoc import hookimpl
from spoc.testing import ServerFactory
from stream_workers import ProcessConsumer, ThreadConsumer

spoc_metrics = pytest.importorskip("spoc_metrics", reason="spoc-plugin-metrics is not installed here")


def sample(page: str, line_start: str) -> float | None:
    for line in page.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


class LastScrape:
    """Scrapes the endpoint once every worker has ended and reported, before the metrics plugin closes it."""

    name = "last-scrape"

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics
        self.page = ""

    @hookimpl(tryfirst=True)
    def server_stopped(self) -> None:
        with urllib.request.urlopen(str(self.metrics.url), timeout=10) as response:
            self.page = response.read().decode()


def test_jobs_are_counted_and_timed_per_worker(redis_url: str, client: redis.Redis, spoc_server: ServerFactory) -> None:
    for n in range(6):
        client.xadd("jobs", {"n": str(n), "fail": "first" if n == 0 else ""})
    options = {"redis_url": redis_url}
    metrics = spoc_metrics.Metrics(port=0, addr="127.0.0.1", flush_interval=0.05)
    last = LastScrape(metrics)
    server = spoc_server(
        ThreadConsumer("thread", plugin_options=options),
        ProcessConsumer("process", plugin_options=options),
        plugins=[metrics, last],
    )
    server.start()
    for _ in range(6):
        assert client.blpop(["done"], timeout=30) is not None
    server.stop()
    assert server.join_all(30) == []  # a clean stop flushes the process worker's last counts
    page = last.page
    done = [
        sample(page, f'streamworker_jobs_total{{outcome="done",stream="jobs",worker="{worker}"}}')
        for worker in ("thread", "process")
    ]
    assert sum(value or 0 for value in done) == 6, page
    failed = [
        sample(page, f'streamworker_jobs_total{{outcome="failed",stream="jobs",worker="{worker}"}}')
        for worker in ("thread", "process")
    ]
    assert sum(value or 0 for value in failed) == 1, page
    assert "streamworker_job_seconds_bucket" in page
