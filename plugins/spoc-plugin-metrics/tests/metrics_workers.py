"""Workers for the plugin's tests, in an importable module so spawn and forkserver children find them."""

from __future__ import annotations

from typing import Any

from spoc.workers import ProcessWorker, ThreadWorker
from spoc_metrics import Counter, Gauge, Histogram

JOBS = Counter("test_jobs_processed_total", "Jobs processed.", ["queue"])
JOB_SECONDS = Histogram("test_job_duration_seconds", "Seconds per job.", buckets=[0.1, 1.0])
IN_PROGRESS = Gauge("test_jobs_in_progress", "Jobs in progress.")


class Counts:
    """Counts `jobs` jobs on queue `queue` in main (one observation each), then says so and waits to be stopped."""

    name: str
    send_record: Any
    wait: Any

    def __init__(self, name: str, jobs: int = 3, queue: str = "default", **options: Any) -> None:
        super().__init__(name, **options)  # type: ignore[call-arg]
        self.jobs = jobs
        self.queue = queue

    def main(self) -> None:
        IN_PROGRESS.set(1)
        for _ in range(self.jobs):
            JOBS.labels(queue=self.queue).inc()
            JOB_SECONDS.observe(0.5)
        self.send_record("test.counted", jobs=self.jobs)
        self.wait()

    def teardown(self) -> None:
        JOBS.labels(queue="teardown").inc()  # counted after the last flush: only the one at the end carries it


class CountsThread(Counts, ThreadWorker):
    pass


class CountsProcess(Counts, ProcessWorker):
    pass


class CountsAsync(ThreadWorker):
    async def main(self) -> None:
        with JOB_SECONDS.time():
            JOBS.labels(queue="async").inc(2)
        self.send_record("test.counted", jobs=2)
        await self.sleep(3600)


class FailsInSetup(ProcessWorker):
    def setup(self) -> None:
        raise ConnectionError("no broker")

    def main(self) -> None:
        pass


class WaitsForKill(ProcessWorker):
    def main(self) -> None:
        JOBS.labels(queue="doomed").inc()
        self.send_record("test.counted", jobs=1)
        self.wait()


class CountsThenEnds(ProcessWorker):
    """Counts `jobs` jobs and ends on its own, each run; a fresh instance (a restart) counts again."""

    def __init__(self, name: str, jobs: int, **options: Any) -> None:
        super().__init__(name, **options)
        self.jobs = jobs

    def main(self) -> None:
        IN_PROGRESS.set(self.restarts + 1)
        for _ in range(self.jobs):
            JOBS.labels(queue="restarted").inc()


class EndsTheFirstTime(ProcessWorker):
    """Its first instance ends on its own at once; the others run until stopped."""

    def main(self) -> None:
        while self.restarts > 0 and not self.wait(60):
            pass


class CountsLate(ProcessWorker):
    """Tells the server its threads before and after its first count, then waits to be stopped."""

    def main(self) -> None:
        import threading

        before = sorted(thread.name for thread in threading.enumerate())
        JOBS.labels(queue="late").inc()
        after = sorted(thread.name for thread in threading.enumerate())
        self.send_record("test.threads", before=before, after=after)
        self.wait()
