"""Replicas under spoc-plugin-restart (issue 30), run by ``spoc run replicated.py:server``.

``proc`` has 3 process replicas and ``other`` is one thread worker, under Supervisor(policy="always") with the
strategy STRATEGY names. Each run prints ``READY <name> replica=<n> pid=<pid> restarts=<n>``. With SCALE_DOWN=1 a
plugin scales ``proc`` to 2 from its worker_started hook once all three ran, and prints ``SCALED``.
"""

from __future__ import annotations

import os

from spoc import AbstractWorker, ProcessWorker, Server, ThreadWorker, hookimpl
from spoc_restart import Backoff, Supervisor


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


class Proc(ProcessWorker):
    replicas = 3

    def main(self) -> None:
        say(f"READY {self.name} replica={self.replica} pid={os.getpid()} restarts={self.restarts}")
        while not self.wait(60):
            pass


class Other(ThreadWorker):
    def main(self) -> None:
        say(f"READY {self.name} replica={self.replica} pid={os.getpid()} restarts={self.restarts}")
        while not self.wait(60):
            pass


class ScaleDown:
    """Scales ``proc`` to 2 from a hook, once its three replicas have started."""

    def __init__(self) -> None:
        self.started: set[str] = set()

    @hookimpl
    def worker_started(self, server: Server, worker: AbstractWorker) -> None:
        self.started.add(worker.name)
        if os.environ.get("SCALE_DOWN") == "1" and self.started == {"proc-1", "proc-2", "proc-3", "other"}:
            server.scale("proc", 2)
            say("SCALED")


supervisor = Supervisor(
    policy="always", strategy=os.environ.get("STRATEGY", "one_for_one"), backoff=Backoff(initial=0.0, jitter=0.0)
)
server = Server("replicated", plugins=[supervisor, ScaleDown()])
server.add_worker(Proc("proc"))
server.add_worker(Other("other"))
