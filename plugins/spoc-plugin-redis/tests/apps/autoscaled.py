"""A stream worker that autoscales on its backlog (issue 30), run by ``spoc run autoscaled.py:server``.

``resize`` consumes the stream ``jobs`` with ``autoscale = (1, 4)`` and short intervals; each job is written to
the file RECORD names as ``<n> <worker>`` (one write: whole lines) and takes a few milliseconds.
"""

from __future__ import annotations

import os
import time

from spoc.workers import ProcessWorker, Server
from spoc_redis import Job, StreamWorker


class Resize(StreamWorker, ProcessWorker):
    stream = "jobs"
    group = "resizers"
    block = 0.2
    batch = 5
    autoscale = (1, 4)
    scale_interval = 0.2
    scale_up_backlog = 50
    scale_down_idle = 1.0

    def setup(self) -> None:
        self.record = os.open(os.environ["RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def handle(self, job: Job) -> None:
        os.write(self.record, f"{job.fields['n']} {self.name}\n".encode())
        time.sleep(0.002)

    def teardown(self) -> None:
        os.close(self.record)


server = Server("autoscaled")
server.add_worker(Resize("resize"))
