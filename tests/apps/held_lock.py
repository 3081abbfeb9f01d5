"""Fork safety on every path: a thread holds a module-level lock nearly all the time while process workers start.

    python tests/apps/held_lock.py PATH

A fork made while the holder runs copies the lock held, and nothing in the
child ever releases it. Each checker child prints ``LOCK <name> free`` or
``LOCK <name> HELD``; the program ends with ``DONE``. PATH is one of:

- ``standalone``: a ThreadWorker started on its own, then five ProcessWorkers
  started one after another with ``start()``;
- ``added_later``: a server that started with the holder only; five process
  workers added after ``start()``;
- ``added_later_with_plugin``: the same, but the server has a plugin (any
  plugin may start workers later), so it has a fork server;
- ``restart``: a checker that fails four times, restarted each time by a
  supervisor plugin, as spoc-plugin-restart does;
- ``restart_threads_first``: the same, with the holder a plain thread started
  before the server, which then can fork no fork server;
- ``threads_first``: the holder is a plain thread started before the server.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from spoc import hookimpl
from spoc.workers import ProcessWorker, Server, ThreadWorker

LOCK = threading.Lock()
HOLDING = threading.Event()
CHECKERS = 5


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def hold_lock_while(running: Any) -> None:
    """Hold LOCK nearly all the time: released only between two acquisitions."""
    while running():
        with LOCK:
            HOLDING.set()
            time.sleep(0.02)


class Holder(ThreadWorker):
    def main(self) -> None:
        hold_lock_while(lambda: self.is_running)


class Checker(ProcessWorker):
    def __init__(self, name: str, fail_runs: int = 0) -> None:
        super().__init__(name, start_method="fork")
        self.fail_runs = fail_runs

    def main(self) -> None:
        free = LOCK.acquire(timeout=1.0)
        say(f"LOCK {self.name} {'free' if free else 'HELD'} run={self.restarts}")
        if self.restarts < self.fail_runs:
            raise RuntimeError("fails on purpose, to be restarted")


class Bystander:
    """A plugin that does nothing: with any plugin active, a server may start workers later."""

    name = "bystander"

    @hookimpl
    def server_started(self) -> None:
        pass


class RestartsFailures:
    name = "restarts-failures"

    @hookimpl
    def worker_exited(self, server: Server, worker: Any, exit_info: Any) -> None:
        if exit_info.outcome == "failed":
            server.restart_worker(worker)
        elif worker.name == "checker":
            server.stop()


def checkers() -> list[Checker]:
    return [Checker(f"checker-{i}") for i in range(CHECKERS)]


def run_server(server: Server, later: list[Checker]) -> None:
    """Start `server`, wait until the holder holds, add `later` one by one, and stop once each has ended."""
    server.start()
    HOLDING.wait(10)
    for checker in later:
        server.add_worker(checker)
        checker.join(30)
    server.stop()
    server.join_all(30)


def main() -> int:
    path = sys.argv[1]
    if path == "standalone":
        holder = Holder("holder")
        holder.start()
        HOLDING.wait(10)
        for checker in checkers():
            checker.start()
            checker.join(30)
        holder.stop()
        holder.join(10)
    elif path in ("added_later", "added_later_with_plugin"):
        server = Server("held-lock", plugins=[Bystander()] if path == "added_later_with_plugin" else [])
        server.add_worker(Holder("holder"))
        run_server(server, checkers())
    elif path == "restart":
        server = Server("held-lock", plugins=[RestartsFailures()])
        server.add_worker(Holder("holder"))
        server.add_worker(Checker("checker", fail_runs=CHECKERS - 1))
        server.start()
        server.join_all(60)
    elif path == "restart_threads_first":
        running = True
        thread = threading.Thread(target=hold_lock_while, args=(lambda: running,), name="user-holder")
        thread.start()
        HOLDING.wait(10)
        server = Server("held-lock", plugins=[RestartsFailures()])
        server.add_worker(Checker("checker", fail_runs=CHECKERS - 1))
        server.start()
        server.join_all(60)
        running = False
        thread.join()
    elif path == "threads_first":
        running = True
        thread = threading.Thread(target=hold_lock_while, args=(lambda: running,), name="user-holder")
        thread.start()
        HOLDING.wait(10)
        server = Server("held-lock")
        for checker in checkers():
            server.add_worker(checker)
        server.start()
        server.join_all(60)
        running = False
        thread.join()
    else:
        raise SystemExit(f"unknown path {path!r}")
    say("DONE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
