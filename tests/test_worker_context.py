"""What a worker's body can learn about itself for plugins: spoc.current_worker() and its phases' durations."""

from __future__ import annotations

import threading

import spoc
from spoc.testing import HookRecorder, ServerFactory
from workers_for_tests import (
    ExitsAtOnce,
    Raises,
    ReportsCurrentAsync,
    ReportsCurrentProcess,
    ReportsCurrentThread,
    SlowSetupThread,
)


def reports(spoc_hooks: HookRecorder, worker: str) -> dict[str, str | None]:
    return {c["data"]["where"]: c["data"]["current"] for c in spoc_hooks.of("worker_record", worker=worker)}


def test_current_worker_is_the_worker_whose_body_runs_here(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str
) -> None:
    workers = (
        ReportsCurrentThread("thread"),
        ReportsCurrentProcess("process", start_method=spoc_start_method),
        ReportsCurrentAsync("async"),
    )
    spoc_server(*workers).start()
    for worker in workers:
        spoc_hooks.wait_for("worker_exited", worker=worker.name)
    assert reports(spoc_hooks, "thread") == {
        "setup": "thread",
        "main": "thread",
        "own thread": None,
        "teardown": "thread",
    }
    # in a process worker's child every thread belongs to the worker
    assert reports(spoc_hooks, "process") == {w: "process" for w in ("setup", "main", "own thread", "teardown")}
    assert reports(spoc_hooks, "async") == {"task": "async"}


def test_current_worker_is_none_outside_any_worker() -> None:
    assert spoc.current_worker() is None
    seen: list[object] = []
    helper = threading.Thread(target=lambda: seen.append(spoc.current_worker()))
    helper.start()
    helper.join()
    assert seen == [None]


def test_startup_shutdown_and_error_events_carry_their_phase_duration(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str
) -> None:
    """Metrics plugins time setup and teardown from the events, where the worker lives."""
    slow, failing = SlowSetupThread("slow", seconds=0.05), Raises("failing", start_method=spoc_start_method)
    spoc_server(slow, failing, ExitsAtOnce("quick", start_method=spoc_start_method), allow_errors=True).start()
    for name in ("slow", "failing", "quick"):
        spoc_hooks.wait_for("worker_exited", worker=name)
    durations = {
        (c.worker, c["event"].kind): c["event"].data["duration"]
        for c in spoc_hooks.of("worker_event")
        if c["event"].kind in ("startup", "shutdown", "error")
    }
    assert durations[("slow", "startup")] >= 0.05
    assert set(durations) == {
        (name, kind) for name in ("slow", "failing", "quick") for kind in ("startup", "shutdown")
    } | {("failing", "error")}
    assert all(isinstance(d, float) and d >= 0 for d in durations.values())
