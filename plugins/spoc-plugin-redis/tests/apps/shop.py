"""A service as a user writes it, run by ``spoc run shop.py:server``: a process consumer and a thread consumer.

The process worker prints ``READY <worker> <pid>`` when it starts and ``JOB <n> <delivery> <pid>`` when a job
begins; a job with ``hang=1`` sleeps for a minute on its first delivery (it is the one cut off), and one with
``seconds=S`` takes S seconds. The thread worker prints ``AUDITED <n>`` for each job of the stream ``audit``.
``START_METHOD`` picks the process worker's start method; ``CONNECT_WITHIN`` and ``START_WITHIN`` set both
workers' ``connect_within`` and ``start_within``, and ``STILL_AWAY_EVERY`` how often an outage is logged again.
"""

from __future__ import annotations

import os
import time

import spoc_redis._consumer
from spoc.workers import ProcessWorker, Server, ThreadWorker
from spoc_redis import Job, StreamWorker

spoc_redis._consumer.STILL_AWAY_EVERY = float(os.environ.get("STILL_AWAY_EVERY", "30"))  # a test's shorter wait


class Knobs:
    connect_within = float(os.environ.get("CONNECT_WITHIN", "10"))
    start_within = float(os.environ.get("START_WITHIN", "60"))


class Orders(Knobs, StreamWorker, ProcessWorker):
    stream = "orders"
    group = "shop"
    block = 0.2

    def setup(self) -> None:
        print(f"READY {self.name} {os.getpid()}", flush=True)

    def handle(self, job: Job) -> None:
        print(f"JOB {job.fields['n']} {job.deliveries} {os.getpid()}", flush=True)
        if job.fields.get("hang") == "1" and job.deliveries == 1:
            time.sleep(60)
        time.sleep(float(job.fields.get("seconds", "0")))
        print(f"DONE {job.fields['n']}", flush=True)


class Audit(Knobs, StreamWorker, ThreadWorker):
    stream = "audit"
    group = "shop"
    block = 0.2

    def handle(self, job: Job) -> None:
        print(f"AUDITED {job.fields['n']}", flush=True)


server = Server("shop")
server.add_worker(Orders("orders-1", start_method=os.environ.get("START_METHOD", "fork")))
server.add_worker(Audit("audit-1"))
