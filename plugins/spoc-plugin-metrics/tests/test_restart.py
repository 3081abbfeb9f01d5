"""Counters survive a worker's restart: the server owns them, and a fresh instance counts on from there."""

from __future__ import annotations

from metrics_workers import CountsThenEnds, CountsThread, EndsTheFirstTime
from scraping import scrape
from spoc import AbstractWorker, Server, WorkerExit, hookimpl
from spoc.testing import HookRecorder, ServerFactory
from spoc_metrics import Metrics


class RestartOnce:
    """A minimal supervisor: the first run of each worker that ends is replaced by a fresh instance."""

    name = "restart-once"

    @hookimpl
    def server_starting(self, server: Server) -> None:
        server.plan_restarts()  # restarted fork workers then come from the fork server

    @hookimpl
    def worker_exited(self, server: Server, worker: AbstractWorker, exit_info: WorkerExit) -> None:
        if worker.restarts == 0 and not exit_info.stop_requested:
            server.restart_worker(worker)


def test_counters_survive_a_restart_and_gauges_start_again(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str
) -> None:
    metrics = Metrics(port=0, addr="127.0.0.1", flush_interval=3600)
    server = spoc_server(
        CountsThenEnds("cycler", jobs=7, start_method=spoc_start_method),
        CountsThread("steady"),
        plugins=[metrics, RestartOnce()],
    )
    server.start()
    spoc_hooks.wait_for("worker_exited", worker=lambda w: w.name == "cycler" and w.restarts == 1)
    page = scrape(metrics)
    assert page.value("test_jobs_processed_total", worker="cycler", queue="restarted") == 14
    assert page.value("spoc_worker_restarts_total", worker="cycler") == 1
    assert page.value("spoc_worker_starts_total", worker="cycler") == 2
    assert page.value("spoc_worker_exits_total", worker="cycler", outcome="clean") == 2
    assert page.value("test_jobs_in_progress", worker="cycler") is None  # dropped with the instance that set it
    assert page.value("spoc_worker_restarts_total", worker="steady") == 0


class RecycleAfterARestart:
    """Restarts the first instance of each worker that ends, then recycles the restarted one twice."""

    name = "recycle-after-a-restart"

    def __init__(self) -> None:
        self.recycled = 0

    @hookimpl
    def worker_started(self, server: Server, worker: AbstractWorker) -> None:
        if worker.restarts == 1 and self.recycled < 2:
            self.recycled += server.recycle_worker(worker, "age")

    @hookimpl
    def worker_exited(self, server: Server, worker: AbstractWorker, exit_info: WorkerExit) -> None:
        if worker.restarts == 0 and not exit_info.stop_requested:
            server.restart_worker(worker)


def test_recycles_are_counted_by_reason_and_not_as_restarts(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    metrics = Metrics(port=0, addr="127.0.0.1", flush_interval=3600)
    recycler = RecycleAfterARestart()
    server = spoc_server(EndsTheFirstTime("cycler"), plugins=[metrics, recycler])
    server.start()
    spoc_hooks.wait_for(
        "worker_started", worker=lambda w: w.name == "cycler" and len(spoc_hooks.of("worker_started")) == 4
    )
    page = scrape(metrics)
    assert page.value("spoc_worker_recycles_total", worker="cycler", reason="age") == 2
    assert page.value("spoc_worker_restarts_total", worker="cycler") == 1  # a recycle's fresh instance is no restart
    assert page.value("spoc_worker_starts_total", worker="cycler") == 4
