"""With spoc-plugin-metrics installed, a stream worker's jobs are metrics with no code of the user's.

Run where both plugins are installed (``nox -s together``); skipped where spoc-plugin-metrics is not.
"""

from __future__ import annotations

import logging
import urllib.request
from typing import Any

import pytest
import redis

from conftest import free_port
from spoc import hookimpl
from spoc.testing import ServerFactory
from stream_workers import Held, ProcessConsumer, ThreadConsumer

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


def scrape(metrics: Any) -> str:
    with urllib.request.urlopen(str(metrics.url), timeout=10) as response:
        page: str = response.read().decode()
    return page


def test_the_queue_gauges_are_read_from_redis_at_scrape_time(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client.xgroup_create("held", "workers", id="0", mkstream=True)
    for n in range(5):
        client.xadd("held", {"n": str(n)})
    client.xreadgroup("workers", "elsewhere", {"held": ">"}, count=2)  # 2 pending, 3 not delivered yet
    for n in range(4):
        client.xadd("held:dead", {"n": str(n), "error": "ValueError: no"})
    metrics = spoc_metrics.Metrics(port=0, addr="127.0.0.1")
    away = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    server = spoc_server(
        Held("held", plugin_options={"redis_url": redis_url}),
        Held("away", plugin_options={"redis_url": away, "stream": "away"}),
        plugins=[metrics],
    )
    server.start()
    with caplog.at_level(logging.WARNING, logger="spoc.redis"):
        page = scrape(metrics)
        assert sample(page, 'streamworker_backlog{group="workers",stream="held"}') == 3, page
        assert sample(page, 'streamworker_pending{group="workers",stream="held"}') == 2, page
        oldest = sample(page, 'streamworker_oldest_pending_seconds{group="workers",stream="held"}')
        assert oldest is not None and 0 <= oldest < 60, page
        assert sample(page, 'streamworker_dead_letters{stream="held"}') == 4, page
        client.xreadgroup("workers", "elsewhere", {"held": ">"}, count=1)  # read again at the next scrape
        client.xadd("held:dead", {"n": "5"})
        page = scrape(metrics)
        assert sample(page, 'streamworker_backlog{group="workers",stream="held"}') == 2, page
        assert sample(page, 'streamworker_pending{group="workers",stream="held"}') == 3, page
        assert sample(page, 'streamworker_dead_letters{stream="held"}') == 5, page
        assert 'stream="away"' not in page  # its Redis does not answer: left out, and said once
    said = [r.getMessage() for r in caplog.records if "left out of the scrapes" in r.getMessage()]
    assert len(said) == 1 and "stream 'away'" in said[0] and away in said[0], said
    server.stop()
    server.join_all(30)
