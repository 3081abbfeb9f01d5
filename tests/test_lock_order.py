"""A hook that calls the server while another thread calls the server into a hook: no deadlock.

A hook runs under the plugins' lock and may call the server (`restart_worker`, `scale`, `workers`), which takes
the server's lock; a thread that adds a worker, restarts or scales one takes the server's lock and then calls
hooks. Both orders once met in CI (`add_worker` against a `worker_exited` that restarted a worker) and hung.
"""

from __future__ import annotations

import threading

import pytest

from spoc import AbstractWorker, Server, SpocError, ThreadWorker, WorkerExit, hookimpl


class EndsAtOnce(ThreadWorker):
    def main(self) -> None:
        pass


class Idle(ThreadWorker):
    def main(self) -> None:
        while not self.wait(60):
            pass


class CallsTheServerFromHooks:
    """In each worker_exited (monitor thread, plugins' lock held) and worker_check (caller's thread), it calls
    the server back."""

    def __init__(self) -> None:
        self.exited = 0
        self.done = threading.Event()

    @hookimpl
    def worker_check(self, server: Server) -> None:
        server.replica_counts()

    @hookimpl
    def worker_exited(self, server: Server, worker: AbstractWorker, exit_info: WorkerExit) -> None:
        server.workers  # noqa: B018 - the server's lock, from inside a hook
        try:
            server.scale("idle", 1 + self.exited % 2)
        except SpocError:  # shutting down
            return
        self.exited += 1
        if self.exited >= 300:
            self.done.set()


@pytest.mark.timeout(60)
def test_hooks_that_call_the_server_and_threads_that_call_hooks_do_not_deadlock() -> None:
    plugin = CallsTheServerFromHooks()
    server = Server("locks", plugins=[plugin])
    server.add_worker(Idle("idle"))
    server.start()
    try:
        n = 0
        while not plugin.done.is_set():  # the caller's thread: the server's lock, then hooks
            server.add_worker(EndsAtOnce(f"brief-{n}"))
            server.scale("idle", 2)
            n += 1
    finally:
        server.stop()
        assert server.join_all(10) == []
    assert all(w.exit_info is not None for w in server.workers)
    assert server.replica_counts()["idle"].running == 0
