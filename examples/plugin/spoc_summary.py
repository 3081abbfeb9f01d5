"""spoc-plugin-summary: when a server stops, log one line per worker: outcome, uptime and jobs done.

A worker counts a job with ``spoc_summary.job_done(self)``, from a thread
worker or inside a process worker's child alike: the record travels to the
server over the worker's own event channel, in order with its lifecycle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from spoc import AbstractWorker, Server, WorkerEvent, WorkerExit, hookimpl

TOPIC = "summary.job"
logger = logging.getLogger("spoc.summary")


def job_done(worker: AbstractWorker, count: int = 1) -> None:
    """Count `count` jobs for `worker`; call it where the worker runs."""
    worker.send_record(TOPIC, count=count)


@dataclass
class Run:
    started: float
    jobs: int = 0
    ended: float | None = None


class Summary:
    """The plugin. Hooks of one server never run at the same time, so plain dicts will do."""

    name = "summary"

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], Run] = {}

    @hookimpl
    def worker_started(self, server: Server, worker: AbstractWorker, event: WorkerEvent) -> None:
        self.runs[server.name, worker.name] = Run(started=event.monotonic)

    @hookimpl
    def worker_record(self, server: Server, worker: AbstractWorker, topic: str, data: dict[str, Any]) -> None:
        if topic == TOPIC:
            self.runs[server.name, worker.name].jobs += int(data.get("count", 1))

    @hookimpl
    def worker_event(self, server: Server, worker: AbstractWorker, event: WorkerEvent) -> None:
        run = self.runs.get((server.name, worker.name))
        if run is not None and event.kind == "shutdown":
            run.ended = event.monotonic

    @hookimpl
    def server_stopped(self, server: Server, exits: tuple[WorkerExit, ...]) -> None:
        for exit_info in exits:
            run = self.runs.pop((server.name, exit_info.worker), None)
            uptime = "never started" if run is None or run.ended is None else f"ran {run.ended - run.started:.2f}s"
            jobs = 0 if run is None else run.jobs
            logger.info("summary: %-10s %-8s %s, %d jobs", exit_info.worker, exit_info.outcome, uptime, jobs)


plugin = Summary()
