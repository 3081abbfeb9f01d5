"""Prometheus metrics for a job processor: thread, process and async workers count jobs, one endpoint serves them.

Needs spoc-plugin-metrics (``pip install ./plugins/spoc-plugin-metrics`` from a checkout):

    python examples/metrics_demo.py          # then: curl http://127.0.0.1:9464/metrics

The workers count jobs and time them with metrics defined once at module level;
a process worker's counts reach the server in batches. When every worker's
jobs show on ``/metrics``, the demo prints those lines, then runs until Ctrl+C
(SIGINT or SIGTERM) and shuts down cleanly. ``SPOC_METRICS_PORT=0`` picks a
free port.
"""

from __future__ import annotations

import asyncio
import logging
import random
import urllib.request

from spoc.workers import ProcessWorker, Server, ThreadWorker
from spoc_metrics import Counter, Gauge, Histogram, Metrics

JOBS = Counter("demo_jobs_processed_total", "Jobs processed, by kind.", ["kind"])
JOB_SECONDS = Histogram("demo_job_duration_seconds", "Seconds per job.", buckets=[0.005, 0.01, 0.05, 0.1])
IN_PROGRESS = Gauge("demo_jobs_in_progress", "Jobs being processed right now.")


def process_one(kind: str) -> None:
    IN_PROGRESS.inc()
    with JOB_SECONDS.time():
        sum(random.random() for _ in range(20_000))  # stands for real work
    IN_PROGRESS.dec()
    JOBS.labels(kind=kind).inc()


class Resizer(ProcessWorker):
    """CPU-bound jobs in a child process: its counts travel to the server in batches."""

    def main(self) -> None:
        while not self.wait(0.05):
            process_one("resize")


class Mailer(ThreadWorker):
    """I/O-bound jobs in a thread: counted straight into the server's registry."""

    def main(self) -> None:
        while not self.wait(0.05):
            process_one("email")


class Notifier(ThreadWorker):
    """An async worker: the same metrics, from coroutines."""

    async def main(self) -> None:
        while not await self.sleep(0.05):
            JOBS.labels(kind="push").inc()
            await asyncio.sleep(0)


class Reporter(ThreadWorker):
    """Scrapes the endpoint like Prometheus would, and prints the jobs once every worker has some."""

    def __init__(self, name: str, metrics: Metrics) -> None:
        super().__init__(name)
        self.metrics = metrics

    def main(self) -> None:
        while not self.wait(0.25):
            url = self.metrics.url
            if url is None:
                continue
            with urllib.request.urlopen(url, timeout=5) as response:
                lines = response.read().decode().splitlines()
            jobs = [line for line in lines if line.startswith("demo_jobs_processed_total{")]
            if len(jobs) == 3:
                print(f"scraped {url}:", *jobs, sep="\n  ", flush=True)
                up = [line for line in lines if line.startswith("spoc_worker_up{")]
                print("workers up:", *up, sep="\n  ", flush=True)
                print("Press Ctrl+C to stop.", flush=True)
                return


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)-7s %(name)s: %(message)s")
    metrics = Metrics(addr="127.0.0.1")  # the port: SPOC_METRICS_PORT, else 9464
    server = Server("metrics-demo", plugins=[metrics])
    for worker in (Resizer("resizer"), Mailer("mailer"), Notifier("notifier"), Reporter("reporter", metrics)):
        server.add_worker(worker)
    outcome = server.run_forever()
    print(f"Shutdown {'clean' if outcome.ok else 'with failures'} (reason: {outcome.reason})")
    raise SystemExit(outcome.exit_code)
