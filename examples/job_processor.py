"""Pattern: background job processor -- thread workers share a queue; the program ends when the jobs are done.

python examples/job_processor.py
"""

from __future__ import annotations

import queue
import time

from spoc.workers import Server, ThreadWorker


class JobProcessor(ThreadWorker):
    """Takes jobs from a shared queue.Queue (fine between threads of one process)."""

    def __init__(self, name: str, jobs: queue.Queue[str]) -> None:
        super().__init__(name)
        self.jobs = jobs

    def main(self) -> None:
        while self.is_running:
            try:
                job = self.jobs.get(timeout=0.2)  # a timeout, so a stop is noticed
            except queue.Empty:
                continue
            try:
                self.process(job)
            finally:
                self.jobs.task_done()

    def process(self, job: str) -> None:
        time.sleep(0.01)  # stands for real work
        print(f"{self.name} processed {job}", flush=True)


def main() -> None:
    jobs: queue.Queue[str] = queue.Queue()
    server = Server(name="JobServer")
    server.add_worker(JobProcessor("Worker-1", jobs))
    server.add_worker(JobProcessor("Worker-2", jobs))
    for i in range(10):
        jobs.put(f"Job-{i}")

    server.start()
    jobs.join()  # every job taken and marked done
    server.stop()
    late = server.join_all(timeout=5.0)
    print("all jobs done;", "every worker stopped" if not late else f"late: {[w.name for w in late]}")


if __name__ == "__main__":
    main()
