"""A restarted worker's predecessors become garbage: the supervisor keeps plain data, not instances."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from restart_workers import FlakyProcess, FlakyThread
from spoc import AbstractWorker, Server, hookimpl
from spoc_restart import Backoff, Supervisor

RESTARTS = 100


class WeakTally:
    """Weak references to every instance that started; `last` is set once restart number RESTARTS has started,
    or the server is stopping."""

    name = "weak-tally"

    def __init__(self) -> None:
        self.started: list[weakref.ref[AbstractWorker]] = []
        self.last = threading.Event()

    @hookimpl
    def worker_started(self, worker: AbstractWorker) -> None:
        self.started.append(weakref.ref(worker))
        if worker.restarts == RESTARTS:
            self.last.set()

    @hookimpl
    def server_stopping(self) -> None:
        self.last.set()  # the supervisor gave up: no need to wait on


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_100_restarts_leave_one_instance_alive(kind: str) -> None:
    tally = WeakTally()
    supervisor = Supervisor(start_within=None, backoff=Backoff(initial=0.0, jitter=0.0))
    flaky = FlakyThread if kind == "thread" else FlakyProcess
    server = Server("leaks", plugins=[supervisor, tally])  # not spoc_server: its recorder keeps every worker
    server.add_worker(flaky("flaky", "main", failures=RESTARTS))
    try:
        server.start()
        assert tally.last.wait(120)
        assert len(tally.started) == RESTARTS + 1, "the supervisor gave up, or the restarts took too long"
        gc.collect()
        alive = [worker for ref in tally.started if (worker := ref()) is not None]
        assert [w.restarts for w in alive] == [RESTARTS], "ended instances are still referenced"
        status = supervisor.status(server)["flaky"]
        assert status.restarts == RESTARTS and status.last_error is not None
        assert "run 99" in status.last_error.message
    finally:
        server.stop()
        assert server.join_all(10) == []
