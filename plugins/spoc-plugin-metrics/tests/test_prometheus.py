"""A real Prometheus server scrapes the endpoint; its HTTP API then has the workers' metrics.

The ``prometheus`` binary comes from Debian's package, which ``.ci/run``
installs; the test starts it on a free loopback port with a generated config
and a short scrape interval. Outside CI, without the binary, it is skipped
with the reason; under CI (``SPOC_REQUIRE_PROMETHEUS=1``) a missing binary fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from metrics_workers import CountsProcess, CountsThread
from spoc.testing import HookRecorder, ServerFactory
from spoc_metrics import Metrics

PROMETHEUS = shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Prometheus:
    """A Prometheus server in its own session, scraping `target` every 0.5 s."""

    def __init__(self, binary: str, target: str, directory: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        config = directory / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n"
            f"scrape_configs:\n  - job_name: spoc\n    static_configs:\n      - targets: ['{target}']\n"
        )
        self.log = directory / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The instant vector `expression` gives now; [] while Prometheus is not up yet."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                answer = json.load(response)
        except OSError:
            return []
        return list(answer["data"]["result"])

    def wait_for(self, expression: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Ask until `expression` has a result (Prometheus starting, then its first scrapes), within `timeout`."""
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"prometheus exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            result = self.query(expression)
            if result:
                return result
            pause.wait(0.2)
        pytest.fail(f"prometheus has no {expression!r} after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture
def prometheus_binary() -> str:
    if PROMETHEUS is None:
        if os.environ.get("SPOC_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("the prometheus binary is missing, and SPOC_REQUIRE_PROMETHEUS=1 (CI) requires it")
        pytest.skip("the prometheus binary is not installed: `apt-get install prometheus` (.ci/run installs it)")
    return PROMETHEUS


@pytest.fixture
def prometheus_for(prometheus_binary: str, tmp_path: Path) -> Iterator[Any]:
    started: list[Prometheus] = []

    def start(target: str) -> Prometheus:
        started.append(Prometheus(prometheus_binary, target, tmp_path))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.mark.timeout(120)
def test_a_real_prometheus_scrapes_the_workers_metrics(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, prometheus_for: Any
) -> None:
    metrics = Metrics(port=0, addr="127.0.0.1", flush_interval=0.1)
    workers = (CountsProcess("process", jobs=5, queue="emails", start_method="forkserver"), CountsThread("thread"))
    spoc_server(*workers, plugins=[metrics]).start()
    for worker in workers:
        spoc_hooks.wait_for("worker_record", worker=worker.name, topic="test.counted")
    assert metrics.address is not None
    host, port = metrics.address
    prometheus = prometheus_for(f"{host}:{port}")

    up = prometheus.wait_for("spoc_worker_up")
    assert {(r["metric"]["worker"], r["value"][1]) for r in up} == {("process", "1"), ("thread", "1")}
    jobs = prometheus.wait_for('test_jobs_processed_total{worker="process"}')
    assert [(r["metric"]["queue"], r["value"][1]) for r in jobs] == [("emails", "5")]
    assert prometheus.query('up{job="spoc"}')[0]["value"][1] == "1"  # Prometheus' own view of the target
