"""A Ray worker that counts with spoc-plugin-metrics (importable in the actors, like ray_workers)."""

from __future__ import annotations

from spoc import ProcessWorker
from spoc_metrics import Counter

JOBS = Counter("test_ray_jobs_total", "Jobs a Ray worker did.", ["queue"])


class CountsOnRay(ProcessWorker):
    backend = "ray"

    def main(self) -> None:
        JOBS.labels(queue="render").inc(4)
        self.send_record("test.counted", jobs=4)
        self.wait()
