"""Scrapes over real HTTP from a running server with thread, process and async workers, after known events."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request

import pytest

from metrics_workers import CountsAsync, CountsLate, CountsProcess, CountsThread, FailsInSetup, WaitsForKill
from scraping import scrape
from spoc import ThreadWorker
from spoc.testing import HookRecorder, ServerFactory
from spoc_metrics import Metrics

LOOPBACK = "127.0.0.1"


def test_workers_of_every_kind_are_scraped_with_their_own_metrics(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str
) -> None:
    metrics = Metrics(port=0, addr=LOOPBACK, flush_interval=0.05)
    workers = (
        CountsThread("thread", jobs=3, queue="emails"),
        CountsProcess("process", jobs=5, queue="emails", start_method=spoc_start_method),
        CountsAsync("async"),
    )
    server = spoc_server(*workers, plugins=[metrics])
    server.start()
    for worker in workers:
        spoc_hooks.wait_for("worker_record", worker=worker.name, topic="test.counted")
    spoc_hooks.wait_for("worker_record", worker="process", topic="spoc_metrics.batch")  # the child's first flush

    assert metrics.url is not None and metrics.address == (LOOPBACK, int(metrics.url.rsplit(":")[-1][:-8]))
    page = scrape(metrics.url)
    assert page.content_type.startswith("text/plain; version=0.0.4")
    for name in ("thread", "process", "async"):
        assert page.value("spoc_worker_up", worker=name) == 1
        assert page.value("spoc_worker_starts_total", worker=name) == 1
        assert page.value("spoc_worker_exits_total", worker=name, outcome="failed") == 0
        assert page.value("spoc_worker_setup_duration_seconds_count", worker=name) == 1
        assert page.value("spoc_worker_last_seen_timestamp_seconds", worker=name) > 0
    assert page.value("test_jobs_processed_total", worker="thread", queue="emails") == 3
    assert page.value("test_jobs_processed_total", worker="process", queue="emails") == 5
    assert page.value("test_jobs_processed_total", worker="async", queue="async") == 2
    assert page.value("test_job_duration_seconds_count", worker="process") == 5
    assert page.value("test_job_duration_seconds_bucket", worker="process", le="1.0") == 5
    assert page.value("test_job_duration_seconds_bucket", worker="process", le="0.1") == 0
    assert page.value("test_job_duration_seconds_sum", worker="process") == 2.5
    assert page.value("test_jobs_in_progress", worker="process") == 1
    assert page.workers("spoc_worker_resident_memory_bytes") == {"process"}  # a process worker's child only
    assert page.value("spoc_worker_resident_memory_bytes", worker="process") > 1_000_000
    assert page.value("spoc_worker_cpu_seconds_total", worker="process") >= 0
    assert page.value("spoc_server_signals_received_total", signal="SIGTERM") == 0
    assert page.value("spoc_build_info", version=__import__("spoc").__version__) == 1
    assert page.value("process_resident_memory_bytes") > 0  # the server's own process
    assert page.value("python_info", implementation="CPython") == 1
    assert not {ls.get("pid") for _, ls, _ in page.samples} - {None}  # never a pid label


def test_openmetrics_when_the_scraper_asks_for_it(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    metrics = Metrics(port=0, addr=LOOPBACK)
    spoc_server(CountsThread("thread", jobs=2), plugins=[metrics]).start()
    spoc_hooks.wait_for("worker_record", worker="thread", topic="test.counted")
    page = scrape(metrics, openmetrics=True)
    assert page.content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert page.families["test_jobs_processed"] == "counter"
    assert page.families["spoc_worker_setup_duration_seconds"] == "histogram"
    assert page.value("test_jobs_processed_total", worker="thread", queue="default") == 2


def test_a_failure_in_setup_is_counted_by_phase(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    metrics = Metrics(port=0, addr=LOOPBACK)
    server = spoc_server(FailsInSetup("broker"), CountsThread("steady"), plugins=[metrics], allow_errors=True)
    server.start()
    spoc_hooks.wait_for("worker_exited", worker="broker")
    page = scrape(metrics)
    assert page.value("spoc_worker_failures_total", worker="broker", phase="setup") == 1
    assert page.value("spoc_worker_failures_total", worker="broker", phase="main") == 0
    assert page.value("spoc_worker_exits_total", worker="broker", outcome="failed") == 1
    assert page.value("spoc_worker_up", worker="broker") == 0
    assert page.value("spoc_worker_starts_total", worker="broker") == 0  # setup never completed
    assert page.value("spoc_worker_setup_duration_seconds_count", worker="broker") == 1
    assert page.value("spoc_worker_teardown_duration_seconds_count", worker="broker") == 1  # teardown still ran


def test_a_sigkilled_process_worker_is_counted_killed_and_down(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str
) -> None:
    metrics = Metrics(port=0, addr=LOOPBACK, flush_interval=0.05)
    doomed = WaitsForKill("doomed", start_method=spoc_start_method)
    server = spoc_server(doomed, CountsThread("steady"), plugins=[metrics], allow_errors=True)
    server.start()
    spoc_hooks.wait_for("worker_record", worker="doomed", topic="spoc_metrics.batch")
    assert doomed.pid is not None
    os.kill(doomed.pid, signal.SIGKILL)
    spoc_hooks.wait_for("worker_exited", worker="doomed")
    page = scrape(metrics)
    assert page.value("spoc_worker_exits_total", worker="doomed", outcome="killed") == 1
    assert page.value("spoc_worker_up", worker="doomed") == 0
    assert page.value("spoc_worker_teardown_duration_seconds_count", worker="doomed") == 0
    assert page.value("test_jobs_processed_total", worker="doomed", queue="doomed") == 1  # flushed before the kill
    assert page.workers("spoc_worker_resident_memory_bytes") == set()
    assert page.value("spoc_worker_up", worker="steady") == 1


def test_a_clean_stop_loses_no_count(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str
) -> None:
    """With a flush interval longer than the test, only the flush at the end can deliver the child's counts."""
    metrics = Metrics(port=0, addr=LOOPBACK, flush_interval=3600)
    worker = CountsProcess("process", jobs=25_000, start_method=spoc_start_method)
    server = spoc_server(worker, CountsThread("steady"), plugins=[metrics])
    server.start()
    spoc_hooks.wait_for("worker_record", worker="process", topic="test.counted")
    worker.stop()
    spoc_hooks.wait_for("worker_exited", worker="process")
    page = scrape(metrics)
    assert page.value("test_jobs_processed_total", worker="process", queue="default") == 25_000
    assert page.value("test_jobs_processed_total", worker="process", queue="teardown") == 1
    assert page.value("test_job_duration_seconds_count", worker="process") == 25_000
    assert page.value("spoc_worker_exits_total", worker="process", outcome="stopped") == 1
    assert page.value("spoc_worker_teardown_duration_seconds_count", worker="process") == 1
    assert page.value("test_jobs_in_progress", worker="process") is None  # a gauge lives as long as its worker
    assert page.value("test_jobs_in_progress", worker="steady") == 1


def test_a_child_starts_its_flusher_at_its_first_count(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str
) -> None:
    """A child that has counted nothing runs no flushing thread (none delays its start, issue 33 point 2); its
    first count starts it, and the count is exported."""
    metrics = Metrics(port=0, addr=LOOPBACK, flush_interval=0.05)
    server = spoc_server(CountsLate("late", start_method=spoc_start_method), plugins=[metrics])
    server.start()
    threads = spoc_hooks.wait_for("worker_record", worker="late", topic="test.threads")["data"]
    assert not [name for name in threads["before"] if name.startswith("spoc-metrics:")]
    assert [name for name in threads["after"] if name.startswith("spoc-metrics:")] == ["spoc-metrics:late"]
    spoc_hooks.wait_for("worker_record", worker="late", topic="spoc_metrics.batch")
    assert scrape(metrics).value("test_jobs_processed_total", worker="late", queue="late") == 1


def test_metrics_the_status_routes_and_nothing_else_are_served(spoc_server: ServerFactory) -> None:
    metrics = Metrics(port=0, addr=LOOPBACK)
    spoc_server(plugins=[metrics]).start()
    assert metrics.url is not None
    with urllib.request.urlopen(metrics.url.replace("/metrics", "/"), timeout=10) as response:
        assert b"/metrics" in response.read()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(metrics.url.replace("/metrics", "/other"), timeout=10)
    assert missing.value.code == 404
    missing.value.close()


def test_the_endpoint_closes_when_the_server_stops(spoc_server: ServerFactory) -> None:
    metrics = Metrics(port=0, addr=LOOPBACK)
    server = spoc_server(CountsThread("thread"), plugins=[metrics])
    server.start()
    url = metrics.url
    assert url is not None
    server.stop()
    assert server.join_all(10) == []
    assert metrics.url is None and metrics.address is None
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=10)
    registry = metrics.registry  # the last run's values stay readable
    assert registry is not None
    assert registry.get_sample_value("spoc_worker_exits_total", {"worker": "thread", "outcome": "stopped"}) == 1


class Idle(ThreadWorker):
    def main(self) -> None:
        while not self.wait(60):
            pass


def test_replicas_are_workers_and_their_counts_are_exported(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    """Each replica is a worker under its own name; spoc_worker_replicas has the desired and running counts."""
    metrics = Metrics(port=0, addr="127.0.0.1")
    server = spoc_server(Idle("idle", replicas=3), Idle("alone"), plugins=[metrics])
    server.start()
    for name in ("idle-1", "idle-2", "idle-3", "alone"):
        spoc_hooks.wait_for("worker_started", worker=name)
    found = scrape(metrics)
    assert found.workers("spoc_worker_up") == {"idle-1", "idle-2", "idle-3", "alone"}
    assert found.value("spoc_worker_replicas", worker="idle", state="desired") == 3
    assert found.value("spoc_worker_replicas", worker="idle", state="running") == 3
    assert found.value("spoc_worker_replicas", worker="alone", state="running") == 1
    server.scale("idle", 1)
    spoc_hooks.wait_for("worker_exited", worker="idle-2")
    spoc_hooks.wait_for("worker_exited", worker="idle-3")
    found = scrape(metrics)
    assert found.value("spoc_worker_replicas", worker="idle", state="desired") == 1
    assert found.value("spoc_worker_replicas", worker="idle", state="running") == 1
    assert found.value("spoc_worker_exits_total", worker="idle-3", outcome="stopped") == 1
