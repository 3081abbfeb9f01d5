"""A stream worker recycled after its ``max_jobs`` (issue 32), run by ``spoc run recycled.py:server``.

``resize`` consumes the stream ``jobs`` with ``max_jobs = 100`` (spoc-plugin-restart's, ±10% per instance);
each job is written to the file RECORD names as ``<n> <instance>`` (one write: whole lines), and each
instance's teardown writes ``TEARDOWN <instance> <jobs_done>`` there. The job with the field ``last`` prints
``LAST JOB DONE``. KIND is ``process`` (the default) or ``thread``.
"""

from __future__ import annotations

import os
import time
import uuid

from spoc.workers import ProcessWorker, Server, ThreadWorker
from spoc_redis import Job, StreamWorker


class Resize(StreamWorker, ProcessWorker if os.environ.get("KIND", "process") == "process" else ThreadWorker):
    stream = "jobs"
    group = "resizers"
    block = 0.2
    max_jobs = 100

    def setup(self) -> None:
        self.record = os.open(os.environ["RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.who = uuid.uuid4().hex  # each instance's own (thread idents are reused)

    def handle(self, job: Job) -> None:
        os.write(self.record, f"{job.fields['n']} {self.who}\n".encode())
        if job.fields.get("last"):
            os.write(1, b"LAST JOB DONE\n")  # one consumer, in order: every job before it is done too
        time.sleep(0.001)

    def teardown(self) -> None:
        os.write(self.record, f"TEARDOWN {self.who} {self.jobs_done}\n".encode())
        os.close(self.record)


server = Server("recycled")
server.add_worker(Resize("resize"))
