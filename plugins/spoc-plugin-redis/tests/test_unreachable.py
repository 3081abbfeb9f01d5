"""A Redis that cannot be reached at start is a worker that has not started, said every so often, and given up
on under the supervisor's ``start_within``; a Redis that comes up late is still met (issue 35, point 1).

Real ``spoc run`` programs in their own sessions, with spoc-plugin-restart installed; the gauge with
spoc-plugin-metrics (``nox -s together``)."""

from __future__ import annotations

import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from conftest import RedisServer, free_port
from spoc.testing import App, ServerFactory, log_lines
from stream_workers import ThreadConsumer

pytestmark = pytest.mark.timeout(120)

SHOP = Path(__file__).parent / "apps" / "shop.py"


def run_shop(spoc_app: type[App], url: str, **env: str) -> App:
    return spoc_app(command=[sys.executable, "-m", "spoc", "run", f"{SHOP}:server"], env={"SPOC_REDIS_URL": url, **env})


def test_an_unreachable_url_is_given_up_on_naming_it(spoc_app: type[App]) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there: a typo
    began = time.monotonic()
    app = run_shop(spoc_app, url, CONNECT_WITHIN="1", START_WITHIN="3")
    assert app.wait(timeout=60) == 1
    took = time.monotonic() - began
    stderr = app.stderr
    assert "has never started" in stderr and "(start_within=3)" in stderr
    assert f"could not reach Redis at 127.0.0.1:{url.split(':')[2].split('/')[0]} ({url})" in stderr
    assert "check redis_url or SPOC_REDIS_URL" in stderr
    assert "worker 'orders-1' started" not in stderr and "worker 'audit-1' started" not in stderr
    assert took < 3 + 1 + 10, f"given up on after {took:.1f}s"  # start_within, one connect_within, a margin


def test_a_redis_that_comes_up_late_is_met_and_an_outage_is_said_again(spoc_app: type[App], tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    app = run_shop(spoc_app, url, CONNECT_WITHIN="60", STILL_AWAY_EVERY="1")
    app.expect(r"worker 'orders-1' cannot reach Redis at 127\.0\.0\.1:\d+ \(redis://", stream="stderr")
    app.expect(r"worker 'orders-1': Redis at 127\.0\.0\.1:\d+ \(\S+\) is still away after \d+s", stream="stderr")
    assert "worker 'orders-1' started" not in app.stderr  # not before it can take jobs
    server = RedisServer(tmp_path, port=port)
    try:
        app.expect(r"worker 'orders-1' reached Redis at", stream="stderr")
        app.expect(r"worker 'orders-1' started", stream="stderr")
        with redis.Redis.from_url(url) as client:
            client.xadd("orders", {"n": "1"})
        app.expect(r"DONE 1")
        app.signal(signal.SIGTERM)
        assert app.wait() == 0
    finally:
        server.stop()


def test_the_connected_gauge(spoc_server: ServerFactory, tmp_path: Path) -> None:
    spoc_metrics = pytest.importorskip("spoc_metrics", reason="spoc-plugin-metrics is not installed here")
    port = free_port()
    metrics = spoc_metrics.Metrics(port=0, addr="127.0.0.1")
    worker = ThreadConsumer("consumer", plugin_options={"redis_url": f"redis://127.0.0.1:{port}/0"})
    server = spoc_server(worker, plugins=[metrics])
    sample = 'streamworker_redis_connected{worker="consumer"}'
    with log_lines("spoc.redis") as lines:
        server.start()
        lines.wait_for("cannot reach Redis")
        assert f"{sample} 0.0" in scrape(metrics.url)
        redis_server = RedisServer(tmp_path, port=port)
        try:
            lines.wait_for("reached Redis")
            assert f"{sample} 1.0" in scrape(metrics.url)
        finally:
            server.stop()
            assert server.join_all(30) == []
            redis_server.stop()


def scrape(url: object) -> str:
    with urllib.request.urlopen(str(url), timeout=10) as response:
        return str(response.read().decode())
