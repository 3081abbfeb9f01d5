"""Metrics a worker defines: their rules, and where samples counted outside a worker, or twice, end up."""

from __future__ import annotations

import logging
import threading

import pytest

from metrics_workers import IN_PROGRESS, JOBS, CountsThread
from scraping import scrape
from spoc import AbstractWorker, Server, hookimpl
from spoc.testing import HookRecorder, ServerFactory
from spoc_metrics import Counter, Gauge, Histogram, Metrics, ScrapeGauge, ScrapeSample, read_at_scrape


def test_defining_a_metric_again_the_same_way_is_fine() -> None:
    again = Counter("test_jobs_processed", "Jobs processed.", ["queue"])  # with or without _total
    assert again.name == JOBS.name == "test_jobs_processed"


@pytest.mark.parametrize(
    ("define", "message"),
    [
        (lambda: Gauge("test_jobs_processed", "Jobs processed.", ["queue"]), "already defined as a counter"),
        (lambda: Counter("test_jobs_processed_total", "Jobs processed."), "already defined as a counter with labels"),
        (lambda: Counter("1jobs", "x"), "is not a valid Prometheus metric name"),
        (lambda: Counter("spoc_jobs", "x"), "the name is taken by spoc-plugin-metrics' own metrics"),
        (lambda: Gauge("process_open_fds", "x"), "the name is taken"),
        (lambda: Counter("test_labels", "x", ["worker"]), "the label 'worker' is added to every sample by spoc"),
        (lambda: Counter("test_labels", "x", "queue"), "labelnames takes a list of names, got the string 'queue'"),
        (lambda: Counter("test_labels", "x", ["a", "a"]), "label names repeat"),
        (lambda: Histogram("test_h", "x", ["le"]), "'le' is the label of a histogram's buckets"),
        (lambda: Histogram("test_h", "x", buckets=[1, 0.5]), "increasing upper bounds"),
        (lambda: Counter("test_c", "x", buckets=[1]), "only a histogram has buckets"),
        (lambda: Counter("test_c", None), "documentation must be a str"),
    ],
)
def test_a_bad_definition_is_refused_naming_the_metric(define: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=None) as refused:
        define()  # type: ignore[operator]
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("use", "message"),
    [
        (lambda: JOBS.inc(), "counter 'test_jobs_processed' has labels: call .labels(queue=...) first"),
        (lambda: JOBS.labels("a", "b"), "takes 1 label values (queue), got 2"),
        (lambda: JOBS.labels(kind="a"), "takes the labels (queue), got (kind)"),
        (lambda: JOBS.labels("a").labels("b"), "labels() was already given"),
        (lambda: JOBS.labels("a").inc(-1), "a counter only goes up; use a Gauge"),
        (lambda: IN_PROGRESS.labels("a"), "has no labels"),
    ],
)
def test_a_wrong_use_says_what_to_do(use: object, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        use()  # type: ignore[operator]
    assert message in str(refused.value)


def test_samples_counted_outside_any_worker_have_an_empty_worker_label(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    metrics = Metrics(port=0, addr="127.0.0.1")
    spoc_server(CountsThread("thread", jobs=1), plugins=[metrics]).start()
    spoc_hooks.wait_for("worker_record", worker="thread", topic="test.counted")
    loose = Counter("test_outside_total", "Counted by the test itself, in no worker.")
    loose.inc()
    helper = threading.Thread(target=loose.inc, args=(2,))  # a thread that is not a worker's
    helper.start()
    helper.join()
    page = scrape(metrics)
    assert page.value("test_outside_total", worker="") == 3  # Prometheus reads an empty label as no label


def test_a_second_server_on_the_same_metrics_object_is_not_exported_and_says_so(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spoc.metrics")
    shared = Metrics(port=0, addr="127.0.0.1")
    spoc_server(CountsThread("first-worker"), plugins=[shared], name="first").start()
    spoc_server(CountsThread("second-worker"), plugins=[shared], name="second").start()
    spoc_hooks.wait_for("worker_record", worker="second-worker", topic="test.counted")
    assert "server 'second' is not exported: this Metrics object already exports server 'first'" in caplog.text
    assert caplog.text.count("is not exported") == 1  # said once
    assert scrape(shared).workers("spoc_worker_up") == {"first-worker"}


class RefusesEveryWorker:
    name = "refuses"

    @hookimpl
    def worker_check(self, worker: AbstractWorker) -> None:
        raise ValueError(f"worker {worker.name!r} is refused")


def test_a_server_whose_start_was_refused_does_not_hold_the_metrics_object(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    shared = Metrics(port=0, addr="127.0.0.1")
    refused = Server("refused", plugins=[shared, RefusesEveryWorker()])
    refused.add_worker(CountsThread("never"))
    with pytest.raises(ValueError, match="is refused"):
        refused.start()
    spoc_server(CountsThread("later"), plugins=[shared]).start()
    spoc_hooks.wait_for("worker_record", worker="later", topic="test.counted")
    assert scrape(shared).workers("spoc_worker_up") == {"later"}


QUEUED = ScrapeGauge("test_queued", "Jobs a queue elsewhere holds, read at scrape time.", ["queue"])
SCRAPES = []  # the servers the reader below was asked about, in order


@read_at_scrape
def read_queued(server: Server) -> list[ScrapeSample]:
    """For the servers of the test below only (readers are registered for the whole process)."""
    if server.name == "scraped":
        SCRAPES.append(server.name)
        return [QUEUED.sample(len(SCRAPES), queue="a"), QUEUED.sample(7, queue="b")]
    if server.name == "scraped-failing":
        raise ConnectionError("the queue is away")
    return []


def test_a_scrape_gauge_is_read_at_each_scrape_and_a_failing_reader_is_named(
    spoc_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spoc")
    metrics = Metrics(port=0, addr="127.0.0.1")
    spoc_server(CountsThread("thread"), plugins=[metrics], name="scraped").start()
    first, second = scrape(metrics), scrape(metrics)
    assert (first.value("test_queued", queue="a"), second.value("test_queued", queue="a")) == (1, 2)
    assert second.value("test_queued", queue="b") == 7 and second.workers("test_queued") == set()
    assert ScrapeGauge("test_by_worker", "A worker's figure.", ["worker"]).labelnames == ("worker",)
    failing = Metrics(port=0, addr="127.0.0.1")
    spoc_server(CountsThread("other"), plugins=[failing], name="scraped-failing").start()
    page = scrape(failing)
    assert page.value("spoc_worker_up", worker="other") is not None  # the rest of the page is served
    assert "test_queued" not in page.families
    assert (
        "the scrape-time reader read_queued failed for server 'scraped-failing', its gauges are left out of this "
        "scrape: ConnectionError: the queue is away"
    ) in caplog.text


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ScrapeGauge("spoc_queued", "taken"), "the name is taken by spoc-plugin-metrics' own metrics"),
        (lambda: ScrapeGauge("queued", "x", ["no-dash"]), "'no-dash' is not a valid label name"),
        (lambda: ScrapeGauge("queued", "x", ["worker", "worker"]), "label names repeat"),
        (lambda: QUEUED.sample(1, line="a"), "scrape gauge 'test_queued' takes the labels (queue), got (line)"),
    ],
)
def test_a_bad_scrape_gauge_or_sample_is_refused_naming_it(make: object, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        make()  # type: ignore[operator]
    assert message in str(refused.value)
