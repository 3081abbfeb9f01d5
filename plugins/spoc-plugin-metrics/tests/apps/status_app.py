"""A service the health and status routes are tried on (tests/test_status_routes.py, tests/test_status_page.py).

The test drives it through files in the folder ``STATUS_FLAGS`` names:
``ready`` lets the ``gated`` worker's setup return (with ``STATUS_GATED=1``),
``torn`` lets the ``steady`` worker's teardown return (with ``STATUS_HOLD_TEARDOWN=1``),
``block`` makes the ``blocker`` worker send a record that blocks the server's
monitor thread until ``release`` exists. ``STATUS_CRASHER=1`` adds a worker
that fails at once, every time, restarted 30 s later. The server's own small
supervisor (not spoc-plugin-restart, which is blocked here, so that the test
is the same with it installed or not) restarts every worker that failed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import spoc
from spoc_metrics import Counter

FLAGS = Path(os.environ["STATUS_FLAGS"])
JOBS = Counter("streamworker_jobs_total", "Jobs of a Redis stream, by outcome.", ["stream", "outcome"])


def flag(name: str) -> bool:
    return (FLAGS / name).exists()


class Steady(spoc.ThreadWorker):
    def main(self) -> None:
        while not self.wait(60):
            pass

    def teardown(self) -> None:
        if os.environ.get("STATUS_HOLD_TEARDOWN") == "1":  # until the file ``torn`` exists
            while not flag("torn"):
                time.sleep(0.01)


class Child(spoc.ProcessWorker):
    def main(self) -> None:
        print(f"child {self.name} runs as {os.getpid()}", flush=True)
        while not self.wait(60):
            pass


class Jobs(spoc.ThreadWorker):
    """Counts a job done every 10 ms and a failed one every 100 ms, as a StreamWorker's metrics would."""

    def main(self) -> None:
        beat = 0
        while not self.wait(0.01):
            beat += 1
            JOBS.labels(stream="orders", outcome="done").inc()
            if beat % 10 == 0:
                JOBS.labels(stream="orders", outcome="failed").inc()


class FailsFirst(spoc.ProcessWorker):
    def main(self) -> None:
        if self.restarts == 0:
            raise ValueError("the first run fails on purpose")
        while not self.wait(60):
            pass


class Gated(spoc.ThreadWorker):
    def setup(self) -> None:
        while not flag("ready"):
            time.sleep(0.01)

    def main(self) -> None:
        while not self.wait(60):
            pass


class Blocker(spoc.ThreadWorker):
    def main(self) -> None:
        sent = False
        while not self.wait(0.02):
            if flag("block") and not sent:
                sent = True
                self.send_record("test.block")


class Crasher(spoc.ThreadWorker):
    def main(self) -> None:
        raise RuntimeError("the crasher crashes")


class Supervisor:
    """Restarts a failed worker (the crasher 30 s later, any other at once)."""

    name = "test-supervisor"

    @spoc.hookimpl
    def worker_exited(self, server: spoc.Server, worker: Any, exit_info: spoc.WorkerExit) -> None:
        if exit_info.ok or server.stopped_by(worker) is not None:
            return
        server.restart_worker(worker, delay=30.0 if worker.name == "crasher" else 0.0)


class BlocksTheMonitor:
    """On the record ``test.block``, holds the monitor thread until the file ``release`` exists."""

    name = "blocks-the-monitor"

    @spoc.hookimpl
    def worker_record(self, server: spoc.Server, worker: Any, topic: str) -> None:
        if topic == "test.block":
            while not flag("release"):
                time.sleep(0.01)


server = spoc.Server("status", plugins=[Supervisor(), BlocksTheMonitor()], disable_plugins=["restart"])
for worker in (Steady("steady"), Child("child"), Jobs("jobs"), FailsFirst("fails-first"), Blocker("blocker")):
    server.add_worker(worker)
if os.environ.get("STATUS_GATED") == "1":
    server.add_worker(Gated("gated"))
if os.environ.get("STATUS_CRASHER") == "1":
    server.add_worker(Crasher("crasher"))
