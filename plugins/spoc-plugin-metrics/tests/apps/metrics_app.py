"""A service run by the tests with ``spoc run``: the installed plugin serves its metrics.

A process worker counts jobs; a thread worker's teardown waits for the file
named by ``RELEASE_FILE`` (so a test can scrape during shutdown) and prints
markers the test waits for.
"""

from __future__ import annotations

import os
import time

from spoc.workers import ProcessWorker, Server, ThreadWorker
from spoc_metrics import Counter

JOBS = Counter("app_jobs_processed_total", "Jobs processed.")


def say(text: str) -> None:
    print(text, flush=True)


class Consumer(ProcessWorker):
    def main(self) -> None:
        JOBS.inc(5)
        say("COUNTED consumer")
        self.wait()


class Lingers(ThreadWorker):
    def main(self) -> None:
        say("READY lingers")
        self.wait()

    def teardown(self) -> None:
        release = os.environ.get("RELEASE_FILE", "")
        say("TEARDOWN-WAITING")
        deadline = time.monotonic() + 60
        while release and not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.01)
        say("TEARDOWN-DONE")


server = Server("metrics-app")
server.add_worker(Consumer("consumer"))
server.add_worker(Lingers("lingers"))
