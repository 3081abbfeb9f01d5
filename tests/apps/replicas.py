"""Replicated workers under ``spoc run`` (issue 30), scaled by commands written to a FIFO.

    CONTROL=/path/to/fifo START_METHOD=fork spoc run replicas.py:server
    CONTROL=/path/to/fifo spoc run replicas.py:single

Each worker prints ``READY <name> replica=<n> pid=<pid>`` when it runs and
``TEARDOWN <name>`` at its end. A line ``scale NAME N`` written to the FIFO
named by CONTROL calls ``server.scale(NAME, N)`` from the control worker's
thread, which prints ``SCALED NAME N`` or ``REFUSED <error>``. A plugin prints
``RUNNING <base name> <count>`` at every start and stop of a replica: how many
run at that moment, as the hooks tell it.
"""

from __future__ import annotations

import os
import select
import threading
from collections import Counter

from spoc import AbstractWorker, ProcessWorker, Server, ThreadWorker, hookimpl

METHOD = os.environ.get("START_METHOD", "fork")


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


class Threaded(ThreadWorker):
    def main(self) -> None:
        say(f"READY {self.name} replica={self.replica} pid={os.getpid()} thread={threading.get_ident()}")
        while not self.wait(60):
            pass

    def teardown(self) -> None:
        say(f"TEARDOWN {self.name}")


class Async(ThreadWorker):
    async def main(self) -> None:
        say(f"READY {self.name} replica={self.replica} pid={os.getpid()} thread={threading.get_ident()}")
        while not await self.sleep(60):
            pass

    async def teardown(self) -> None:
        say(f"TEARDOWN {self.name}")


class Proc(ProcessWorker):
    replicas = 3

    def __init__(self, name: str) -> None:
        super().__init__(name, start_method=METHOD)

    def main(self) -> None:
        say(f"READY {self.name} replica={self.replica} pid={os.getpid()}")
        while not self.wait(60):
            pass

    def teardown(self) -> None:
        say(f"TEARDOWN {self.name}")


class Stubborn(ProcessWorker):
    """Ignores its stop request: a scale-down has to end it as a shutdown would."""

    def main(self) -> None:
        say(f"READY {self.name} replica={self.replica} pid={os.getpid()}")
        while True:  # a stop request sets is_running False; this loop does not look
            threading.Event().wait(0.05)


class Control(ThreadWorker):
    """Reads ``scale NAME N`` lines from the FIFO named by CONTROL and scales the server it belongs to."""

    def __init__(self, name: str, server: Server) -> None:
        super().__init__(name)
        self.target = server

    def main(self) -> None:
        fd = os.open(os.environ["CONTROL"], os.O_RDWR | os.O_NONBLOCK)  # RDWR: no EOF when a writer leaves
        pending = b""
        try:
            say("CONTROL ready")
            while self.is_running:
                if not select.select([fd], [], [], 0.1)[0]:
                    continue
                pending += os.read(fd, 4096)
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    _, name, count = line.decode().split()
                    try:
                        self.target.scale(name, int(count))
                        say(f"SCALED {name} {count}")
                    except Exception as exc:
                        say(f"REFUSED {type(exc).__name__}: {exc}")
        finally:
            os.close(fd)


class Counting:
    """Prints how many replicas of each worker run, at each start and stop the hooks tell."""

    def __init__(self) -> None:
        self.running: Counter[str] = Counter()
        self.names: set[str] = set()

    def _change(self, worker: AbstractWorker, up: bool) -> None:
        if up == (worker.name in self.names):
            return
        (self.names.add if up else self.names.discard)(worker.name)
        self.running[worker.base_name] += 1 if up else -1
        say(f"RUNNING {worker.base_name} {self.running[worker.base_name]}")

    @hookimpl
    def worker_started(self, worker: AbstractWorker) -> None:
        self._change(worker, True)

    @hookimpl
    def worker_stopping(self, worker: AbstractWorker) -> None:
        self._change(worker, False)

    @hookimpl
    def worker_exited(self, worker: AbstractWorker) -> None:
        self._change(worker, False)


server = Server("replicas", plugins=[Counting()])
server.add_worker(Threaded("threaded", replicas=2))
server.add_worker(Async("async", replicas=2))
server.add_worker(Proc("proc"))
server.add_worker(Control("control", server))

single = Server("single", plugins=[Counting()])
single.add_worker(Proc("proc"))
single.add_worker(Control("control", single))
single.scale("proc", 1)

stubborn = Server("stubborn")
stubborn.add_worker(Stubborn("stubborn", replicas=2))
stubborn.add_worker(Control("control", stubborn))

rolling = Server("rolling", plugins=[Counting()])
rolling.add_worker(Proc("proc"))
rolling.scale("proc", 4)
