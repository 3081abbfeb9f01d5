"""A worker that ignores its stop, recycled under ``spoc run --shutdown-timeout 0.5 recycled.py:server``.

``stubborn`` (a process worker) prints ``READY stubborn pid=<pid>`` when its main() begins and then never looks
at its stop request. A plugin recycles its first instance from its ``worker_started`` hook: the recycle has to
end it at the shutdown timeout, as a shutdown would, and then start the fresh instance.
"""

from __future__ import annotations

import os
import threading

from spoc import AbstractWorker, ProcessWorker, Server, hookimpl


class Stubborn(ProcessWorker):
    def main(self) -> None:
        os.write(1, f"READY {self.name} pid={os.getpid()}\n".encode())
        while True:  # a stop request sets is_running False; this loop does not look
            threading.Event().wait(0.05)


class RecyclesTheFirst:
    def __init__(self) -> None:
        self.recycled = False

    @hookimpl
    def worker_started(self, server: Server, worker: AbstractWorker) -> None:
        if not self.recycled:
            self.recycled = server.recycle_worker(worker, "test")


server = Server("recycled", plugins=[RecyclesTheFirst()])
server.add_worker(Stubborn("stubborn"))
