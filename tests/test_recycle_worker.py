"""Server.recycle_worker (issue 32): a running worker replaced gracefully, not as a failure; and the job count
(`job_done`, `jobs_done`, `call_at_jobs`) a supervisor recycles on."""

from __future__ import annotations

import multiprocessing
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from spoc import Server, hookimpl
from spoc.testing import HookRecorder, ServerFactory
from workers_for_tests import RenewedProcess, RenewedThread, TearsDownWhenReleased, WaitsForStop

pytestmark = pytest.mark.timeout(60)

APPS = Path(__file__).resolve().parent / "apps"


class Asks:
    """Notes what `Server.stopped_by` says of each worker in its worker_recycling and worker_exited hooks."""

    name = "asks"

    def __init__(self) -> None:
        self.said: list[tuple[str, str, Any]] = []

    @hookimpl
    def worker_recycling(self, server: Server, worker: Any, reason: str) -> None:
        self.said.append(("recycling", reason, server.stopped_by(worker)))

    @hookimpl
    def worker_exited(self, server: Server, worker: Any) -> None:
        self.said.append(("exited", worker.exit_info.outcome, server.stopped_by(worker)))
        if server.stopped_by(worker) == "recycle":
            assert server.restart_worker(worker) is None  # the recycle starts its fresh instance, not a supervisor


@pytest.mark.parametrize("kind", ["thread", "fork", "spawn"])
def test_a_recycled_worker_tears_down_and_a_fresh_instance_starts(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, kind: str
) -> None:
    first = RenewedThread("w") if kind == "thread" else RenewedProcess("w", start_method=kind)
    asks = Asks()
    server = spoc_server(first, plugins=[asks])
    server.start()
    spoc_hooks.wait_for("worker_record", worker="w", topic="test.main")
    assert server.recycle_worker(first, "age") is True
    assert server.recycle_worker(first, "age") is False  # once: it is stopping already
    fresh_started = spoc_hooks.wait_for("worker_started", worker=lambda w: w is not first and w.name == "w")
    fresh = fresh_started["worker"]
    assert spoc_hooks.of("worker_record", worker="w", topic="test.teardown"), "the recycled instance's teardown ran"
    assert first.exit_info is not None and first.exit_info.outcome == "stopped"
    assert fresh.restarts == first.restarts == 0 and fresh.previous_exit is first.exit_info
    assert server.workers == (fresh,)
    assert asks.said == [("recycling", "age", "recycle"), ("exited", "stopped", "recycle")]
    names = spoc_hooks.names("w")
    assert names.index("worker_recycling") < names.index("worker_stopping") < names.index("worker_exited")
    assert server.stopped_by(first) is None  # said until its worker_exited hooks have run


def test_a_worker_that_is_not_running_is_not_recycled(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    waits = WaitsForStop("waits")
    server = spoc_server(waits)
    assert server.recycle_worker(waits, "age") is False  # the server has not started
    server.start()
    waits.ready.wait(10)
    waits.stop()
    assert server.recycle_worker(waits, "age") is False  # stopping already
    spoc_hooks.wait_for("worker_exited", worker="waits")
    assert server.recycle_worker(waits, "age") is False  # ended
    assert not spoc_hooks.of("worker_recycling")


def test_no_recycle_during_a_shutdown(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    release = multiprocessing.Event()
    holds = TearsDownWhenReleased("holds", release)
    other = WaitsForStop("other")
    server = spoc_server(holds, other)
    server.start()
    other.ready.wait(10)
    spoc_hooks.wait_for("worker_started", worker="holds")
    holds.stop()  # its teardown holds the shutdown back
    server.stop()
    try:
        assert server.recycle_worker(other, "age") is False
    finally:
        release.set()


@pytest.mark.parametrize("reason", ["", None, 3])
def test_a_recycle_needs_a_reason(spoc_server: ServerFactory, reason: Any) -> None:
    waits = WaitsForStop("waits")
    server = spoc_server(waits)
    with pytest.raises(TypeError, match=r"Server '.*': recycle_worker\(\) takes a non-empty str reason"):
        server.recycle_worker(waits, reason)


def test_a_recycled_process_that_will_not_stop_is_ended_at_the_deadline_and_replaced(spoc_app: Any) -> None:
    app = spoc_app(
        command=[sys.executable, "-m", "spoc", "run", "--shutdown-timeout", "0.5", f"{APPS}/recycled.py:server"]
    )
    first, fresh = (int(m[1]) for m in app.expect(r"^READY stubborn pid=(\d+)", count=2))
    assert first != fresh
    app.expect(r"worker 'stubborn' did not stop within 0.5s of the recycle's request", stream="stderr")
    app.expect(r"worker 'stubborn' was killed by SIG(TERM|KILL)", stream="stderr")
    app.expect(r"starting worker 'stubborn' afresh \(recycle\)", stream="stderr")
    app.signal(signal.SIGTERM)  # the fresh one ignores its stop too: the shutdown ends it at its deadline
    assert app.wait() == 1, app.stderr


def two_replicas(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> tuple[Server, Any, Any]:
    """A running server with 2 replicas whose teardowns wait for the event returned: (server, replica 2, event)."""
    release = multiprocessing.Event()
    server = spoc_server(TearsDownWhenReleased("r", release, start_method="fork"))
    server.scale("r", 2)
    server.start()
    spoc_hooks.wait_for("worker_started", worker="r-2")
    (r2,) = [w for w in server.workers if w.name == "r-2"]
    return server, r2, release


def test_a_replica_scaled_away_while_it_is_recycled_is_not_started_again(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    server, r2, release = two_replicas(spoc_server, spoc_hooks)
    assert server.recycle_worker(r2, "jobs")
    server.scale("r", 1)
    release.set()
    spoc_hooks.wait_for("worker_exited", worker="r-2")
    assert [w.name for w in server.workers] == ["r-1"]
    assert server.replica_counts()["r"].desired == 1
    assert len(spoc_hooks.of("worker_joined", worker="r-2")) == 1


def test_a_recycle_is_refused_once_a_scale_down_stops_the_replica(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    server, r2, release = two_replicas(spoc_server, spoc_hooks)
    server.scale("r", 1)
    assert server.recycle_worker(r2, "jobs") is False
    release.set()


# ---------------------------------------------------------------------- counting jobs


def test_job_done_counts_and_call_at_jobs_rings_once_at_its_count() -> None:
    worker = WaitsForStop("counts")
    rung: list[tuple[str, int]] = []
    worker.call_at_jobs(3, lambda jobs: rung.append(("three", jobs)))
    worker.call_at_jobs(1, lambda jobs: rung.append(("one", jobs)))
    assert worker.jobs_done == 0
    assert [worker.job_done() for _ in range(5)] == [1, 2, 3, 4, 5]
    assert worker.jobs_done == 5
    assert rung == [("one", 1), ("three", 3)]
    worker.call_at_jobs(2, lambda jobs: rung.append(("late", jobs)))  # passed already: at once
    assert rung[-1] == ("late", 5)
    worker.job_done()
    assert len(rung) == 3


@pytest.mark.parametrize("count", [0, -1, 1.5, True, "3"])
def test_call_at_jobs_refuses_a_bad_count(count: Any) -> None:
    with pytest.raises(
        ValueError, match=rf"worker 'w': call_at_jobs\(\) takes a count that is an int >= 1, got {count!r}"
    ):
        WaitsForStop("w").call_at_jobs(count, lambda jobs: None)


def test_a_fresh_instance_counts_from_zero() -> None:
    worker = WaitsForStop("w")
    worker.job_done()
    assert worker.fresh_instance().jobs_done == 0


def test_recycle_worker_on_a_server_that_never_started_is_false(spoc_server: ServerFactory) -> None:
    server = spoc_server()
    worker = WaitsForStop("w")
    assert server.recycle_worker(worker, "age") is False
    with pytest.raises(ValueError, match="is not this server's worker 'w'"):
        server.restart_worker(worker)
