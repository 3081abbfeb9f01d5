"""Workers recycled by spoc-plugin-restart (issue 32), run by ``spoc run recycled.py:server``.

MODE picks the workers:

- ``age``: ``proc`` (a process worker) and ``thread`` (a thread worker), each with ``max_age = 1``;
- ``memory``: ``grow``, a process worker that holds 50 MiB and then grows 5 MiB a second, with
  ``max_memory = "100MiB"``; it prints ``RSS <MiB>`` after each step;
- ``replicas``: ``proc`` with ``replicas = 3`` and ``max_age = 1``.

Each instance prints ``READY <name> pid=<pid> restarts=<n> at=<monotonic>`` once its setup returned (from its
``lifecycle("startup")``, before the server hears of it) and
``TEARDOWN <name> pid=<pid> at=<monotonic>`` in its teardown. The server runs under Supervisor(max_restarts=1):
a second restart within a minute would make it give up, and recycles must not.
"""

from __future__ import annotations

import os
import time

from spoc import ProcessWorker, Server, ThreadWorker
from spoc_restart import Supervisor


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


class Announced:
    """Says when it has started and when its teardown runs."""

    name: str
    restarts: int

    def lifecycle(self, event_type: str, **data: object) -> None:
        """READY from its ``lifecycle("startup")``: where it lives, before the server hears that it started (its
        ``worker_started`` hook, which lets the supervisor recycle the next replica). A line printed in main()
        could come a moment after the next replica's teardown began."""
        if event_type == "startup":
            say(f"READY {self.name} pid={os.getpid()} restarts={self.restarts} at={time.monotonic():.3f}")

    def teardown(self) -> None:
        say(f"TEARDOWN {self.name} pid={os.getpid()} at={time.monotonic():.3f}")


class Proc(Announced, ProcessWorker):
    max_age = 1.0

    def main(self) -> None:
        while not self.wait(60):
            pass


class Thread(Announced, ThreadWorker):
    max_age = 1.0

    def main(self) -> None:
        while not self.wait(60):
            pass


class Grow(Announced, ProcessWorker):
    max_memory = "100MiB"

    def main(self) -> None:
        held = [b"\x01" * (50 * 2**20)]  # pages written: resident
        while not self.wait(0.2):
            held.append(b"\x01" * 2**20)  # 5 MiB a second
            with open("/proc/self/statm") as statm:
                say(f"RSS {int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20:.1f}")


server = Server("recycled", plugins=[Supervisor(max_restarts=1, within=60.0)])
mode = os.environ.get("MODE", "age")
if mode == "age":
    server.add_worker(Proc("proc"))
    server.add_worker(Thread("thread"))
elif mode == "memory":
    server.add_worker(Grow("grow"))
else:
    server.add_worker(Proc("proc", replicas=3))
