"""A SIGHUP reload that meets a hung worker (issue 37, point 2), run by ``spoc run --shutdown-timeout 1``.

    spoc run --shutdown-timeout 1 tests/apps/hung_reload.py:server

In the order they were added: ``hung``, a process worker whose ``main()`` never
looks at the stop (a hung ``handle()``); ``stuck``, a thread worker whose
``teardown()`` never returns; ``after``, a worker that stops at once. Each run
prints ``READY <name> run=<n> pid=<pid>``.
"""

from __future__ import annotations

import itertools
import os
import threading
import time

from spoc import ProcessWorker, Server, ThreadWorker

RUNS = itertools.count(1)
NEVER = threading.Event()


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


class Ready:
    def setup(self) -> None:
        say(f"READY {self.name} run={next(RUNS)} pid={os.getpid()}")  # type: ignore[attr-defined]


class Hung(Ready, ProcessWorker):
    start_method = "fork"

    def main(self) -> None:
        while True:  # a handle() that never returns
            time.sleep(0.05)


class Stuck(Ready, ThreadWorker):
    def main(self) -> None:
        self.wait()

    def teardown(self) -> None:
        NEVER.wait()  # a teardown that never returns


class After(Ready, ThreadWorker):
    def main(self) -> None:
        self.wait()


server = Server("hung-reload")
server.add_worker(Hung("hung"))
server.add_worker(Stuck("stuck"))
server.add_worker(After("after"))
