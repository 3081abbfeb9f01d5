"""A supervised service whose fork server dies while it runs (issue 37, point 1), run by ``spoc run``.

    spoc run fork_server_death.py:server
    spoc run fork_server_death.py:unpicklable

``server``: a thread worker holds a module-level lock nearly all the time (a
program that runs threads: a plain fork of it copies the lock held), and a
``fork`` process worker prints ``READY orders-1 pid=<pid> lock=<free|HELD>``
from each run. ``unpicklable``: the same worker holds a lock of its own, so it
can be restarted only by a fork of a copy that already has it (never pickled).
"""

from __future__ import annotations

import os
import threading
import time

from spoc import ProcessWorker, Server, ThreadWorker

LOCK = threading.Lock()


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


class Holder(ThreadWorker):
    """Holds LOCK nearly all the time, released only between two acquisitions."""

    def main(self) -> None:
        while self.is_running:
            with LOCK:
                time.sleep(0.02)


class Orders(ProcessWorker):
    start_method = "fork"

    def main(self) -> None:
        free = LOCK.acquire(timeout=1.0)
        if free:
            LOCK.release()
        say(f"READY {self.name} pid={os.getpid()} lock={'free' if free else 'HELD'}")
        while not self.wait(60):
            pass


class Unpicklable(Orders):
    # spoc-plugin-restart: a worker failing at every attempt for 1 s is given up on, whether it ran long enough
    # to count as started (give_up_after) or not (start_within)
    give_up_after = start_within = 1.0

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.guard = threading.Lock()  # a fork copies it; pickle cannot


server = Server("fork-death")
server.add_worker(Holder("holder"))
server.add_worker(Orders("orders-1"))

unpicklable = Server("fork-death")
unpicklable.add_worker(Unpicklable("orders-1"))
