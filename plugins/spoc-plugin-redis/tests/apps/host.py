"""One "host" of the scale-out tests: a server of two process consumers of the stream ``jobs``.

Usage: ``python host.py NAME RECORD_FILE``, with ``SPOC_REDIS_URL`` set. Each job is written to the record
file as ``<n> <host> <worker>`` and pushed to the list ``done`` as ``<n> <host>`` (for the test to wait on),
then takes a few milliseconds; every 50 jobs a worker prints a progress line. Each worker prints
``READY <host> <worker>`` at the end of its setup().
"""

from __future__ import annotations

import os
import sys
import time

import redis

from spoc.workers import ProcessWorker, Server
from spoc_redis import Job, StreamWorker

HOST, RECORD = sys.argv[1], sys.argv[2]


class Consumer(StreamWorker, ProcessWorker):
    stream = "jobs"
    group = "hosts"
    block = 0.2
    batch = 5
    claim_idle = float(os.environ.get("CLAIM_IDLE", "2"))

    def setup(self) -> None:
        self.record = os.open(RECORD, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.count = 0
        self.done = redis.Redis.from_url(os.environ["SPOC_REDIS_URL"])
        print(f"READY {HOST} {self.name}", flush=True)

    def handle(self, job: Job) -> None:
        os.write(self.record, f"{job.fields['n']} {HOST} {self.name}\n".encode())  # one write: whole lines
        self.done.rpush("done", f"{job.fields['n']} {HOST}")
        time.sleep(0.003)
        self.count += 1
        if self.count % 50 == 0:
            print(f"PROGRESS {HOST} {self.name} {self.count}", flush=True)

    def teardown(self) -> None:
        os.close(self.record)
        self.done.close()


if __name__ == "__main__":
    server = Server(HOST)
    server.add_worker(Consumer("c1"))
    server.add_worker(Consumer("c2"))
    sys.exit(server.run_forever().exit_code)
