"""Metrics a worker counts in its Ray actor reach the server's /metrics with its worker label (the metrics
plugin's in-child part runs there through the hosted life's child hooks)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from spoc.testing import HookRecorder, ServerFactory
from spoc_ray import Ray

spoc_metrics = pytest.importorskip("spoc_metrics", reason="the metrics test needs spoc-plugin-metrics")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "spoc-plugin-metrics" / "tests"))

from scraping import scrape  # noqa: E402

pytestmark = pytest.mark.usefixtures("local_ray")


def test_a_ray_worker_s_metrics_reach_the_endpoint_with_its_worker_label(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    from ray_metrics_workers import CountsOnRay

    metrics = spoc_metrics.Metrics(port=0, addr="127.0.0.1", flush_interval=0.05)
    server = spoc_server(CountsOnRay("renderer"), plugins=[Ray(), metrics])
    server.start()
    spoc_hooks.wait_for("worker_record", worker="renderer", topic="test.counted")
    spoc_hooks.clear()
    spoc_hooks.wait_for("worker_record", worker="renderer", topic=spoc_metrics.BATCH_TOPIC)  # a flush after the count
    page = scrape(metrics)
    assert page.value("test_ray_jobs_total", worker="renderer", queue="render") == 4
    assert page.value("spoc_worker_up", worker="renderer") == 1
    assert page.value("spoc_worker_starts_total", worker="renderer") == 1
    server.stop()
    assert server.join_all(30) == []
