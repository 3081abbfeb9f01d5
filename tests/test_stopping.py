"""Stopping: wait()/sleep() wake at once, stop() is idempotent and signal-safe, and the Server API."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time
from typing import Any

import pytest

from spoc import Server, SpocError, ThreadWorker, hookimpl, set_uvloop_if_available
from spoc._aio import loop_factory
from spoc.testing import HookRecorder, ServerFactory
from workers_for_tests import (
    ReportsLoop,
    ReportsLoopProcess,
    SleepsAsync,
    WaitsForStop,
    WaitsForStopProcess,
    drain,
    journal,
)


@pytest.mark.parametrize("worker_class", [WaitsForStop, SleepsAsync])
def test_stop_wakes_a_worker_blocked_in_wait_or_sleep_at_once(worker_class: Any) -> None:
    worker = worker_class("sleeper")
    worker.start()
    assert worker.ready.wait(10)
    began = time.monotonic()
    worker.stop()
    worker.join(10)
    elapsed = time.monotonic() - began
    assert not worker.is_alive()
    assert worker.woke_by_stop is True
    assert elapsed < 0.5, f"stop took {elapsed:.3f}s, not milliseconds"


def test_stop_reaches_a_process_worker_blocked_in_wait(spoc_start_method: str) -> None:
    ready = multiprocessing.get_context(spoc_start_method).Event()
    worker = WaitsForStopProcess("sleeper", ready, start_method=spoc_start_method)
    server = Server()
    server.add_worker(worker)
    server.start()
    assert ready.wait(30)
    began = time.monotonic()
    server.stop()
    assert server.join_all(30) == []
    assert time.monotonic() - began < 5.0
    assert worker.exit_info is not None and worker.exit_info.outcome == "stopped"


def test_stop_asks_process_workers_first_then_threads_each_in_the_order_added(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    # A child's teardown begins only when the request crosses its control pipe: it is sent before the
    # thread workers', however many of them were added first.
    readies = [multiprocessing.get_context("fork").Event() for _ in range(2)]
    threads = [WaitsForStop(f"t{i}") for i in range(3)]
    processes = [WaitsForStopProcess(f"p{i}", ready, start_method="fork") for i, ready in enumerate(readies)]
    server = spoc_server(threads[0], processes[0], threads[1], processes[1], threads[2])
    server.start()
    assert all(ready.wait(30) for ready in readies)
    assert all(thread.ready.wait(30) for thread in threads)
    server.stop()
    assert server.join_all(30) == []
    assert [call.worker for call in spoc_hooks.of("worker_stopping")] == ["p0", "p1", "t0", "t1", "t2"]


def test_wait_times_out_with_false_and_stop_is_idempotent() -> None:
    worker = WaitsForStop("w")
    assert worker.wait(0.01) is False
    worker.stop()
    worker.stop()
    assert worker.wait(0.01) is True
    assert worker.is_running is False


def test_stop_is_callable_from_a_signal_handler() -> None:
    worker = WaitsForStop("w")
    worker.start()
    assert worker.ready.wait(10)
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: worker.stop())
    try:
        signal.raise_signal(signal.SIGUSR1)
        worker.join(10)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert not worker.is_alive() and worker.woke_by_stop


def test_add_worker_rejects_non_workers_duplicates_and_started_workers() -> None:
    server = Server("api")
    with pytest.raises(TypeError, match=r"Server 'api': add_worker\(\) takes a worker .* got str"):
        server.add_worker("not a worker")  # type: ignore[arg-type]
    server.add_worker(WaitsForStop("one"))
    with pytest.raises(ValueError, match="already has a worker named 'one'"):
        server.add_worker(WaitsForStop("one"))
    started = WaitsForStop("started")
    started.start()
    with pytest.raises(ValueError, match="'started' was already started"):
        server.add_worker(started)
    started.stop()
    started.join(10)


def test_a_server_runs_once_and_refuses_workers_while_shutting_down() -> None:
    server = Server("once")
    server.start()
    with pytest.raises(SpocError, match="already started"):
        server.start()
    server.stop()
    with pytest.raises(SpocError, match="shutting down"):
        server.add_worker(WaitsForStop("late"))
    assert server.join_all(5) == []


def test_run_forever_on_an_empty_server_returns_at_once() -> None:
    outcome = Server("empty").run_forever()
    assert outcome.reason == "workers_ended" and outcome.ok and outcome.exit_code == 0


def test_run_forever_restores_the_previous_signal_handlers() -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        Server("restore").run_forever()
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_server_can_be_driven_from_another_thread() -> None:
    box: dict[str, Any] = {}

    def drive() -> None:
        server = Server("threaded")
        worker = WaitsForStop("w")
        server.add_worker(worker)
        server.start()
        worker.ready.wait(10)
        server.stop()
        box["late"] = server.join_all(10)

    driver = threading.Thread(target=drive)
    driver.start()
    driver.join(30)
    assert box["late"] == []


def test_run_forever_returns_when_stop_is_called() -> None:
    server = Server("stopper")
    worker = WaitsForStop("w")
    server.add_worker(worker)
    timer = threading.Thread(target=lambda: (worker.ready.wait(10), server.stop()))
    timer.start()
    outcome = server.run_forever()
    timer.join(10)
    assert outcome.reason == "stop" and outcome.ok
    assert [e.outcome for e in outcome.exits] == ["stopped"]


class NotesTheClosingLine:
    """At server_stopped, the closing lines the spoc logger has had by then."""

    name = "notes-the-closing-line"

    def __init__(self, caplog: Any) -> None:
        self.caplog = caplog
        self.seen: list[list[str]] = []

    @hookimpl
    def server_stopped(self) -> None:
        self.seen.append([r.getMessage() for r in self.caplog.records if " stopped (" in r.getMessage()])


def test_run_forever_logs_its_closing_line_before_the_server_stopped_hooks(caplog: Any) -> None:
    """So that a plugin writing the server's log (spoc-plugin-logging) writes it in its format (issue 31,
    point 4); one line, at INFO when every worker ended cleanly."""
    notes = NotesTheClosingLine(caplog)
    server = Server("closing", plugins=[notes])
    worker = WaitsForStop("w")
    server.add_worker(worker)
    timer = threading.Thread(target=lambda: (worker.ready.wait(10), server.stop()))
    timer.start()
    with caplog.at_level(logging.INFO, logger="spoc"):
        server.run_forever()
    timer.join(10)
    assert notes.seen == [["server 'closing' stopped (stop): 1 worker ended cleanly"]]
    (line,) = [r for r in caplog.records if " stopped (" in r.getMessage()]
    assert (line.name, line.levelno, line.spoc_server) == ("spoc", logging.INFO, "closing")


class RefusesToStop(ThreadWorker):
    release = threading.Event()

    def main(self) -> None:
        self.release.wait(60)


def test_join_all_names_a_thread_that_will_not_stop_with_its_stack(caplog: Any) -> None:
    server = Server("stuck")
    stuck = RefusesToStop("stuck")
    server.add_worker(stuck)
    server.start()
    server.stop()
    try:
        late = server.join_all(0.2)
    finally:
        RefusesToStop.release.set()
    assert late == [stuck]
    message = "\n".join(r.getMessage() for r in caplog.records)
    assert "worker 'stuck' (thread) did not stop within 0.2s" in message
    assert "self.release.wait(60)" in message
    stuck.join(10)


def test_uvloop_runs_async_workers_once_enabled(spoc_start_method: str) -> None:
    pytest.importorskip("uvloop")
    records = journal()
    import spoc._aio as aio

    saved = aio._uvloop_factory
    try:
        assert set_uvloop_if_available() is True
        server = Server()
        server.add_worker(ReportsLoop("thread", records))
        server.add_worker(ReportsLoopProcess("process", records, start_method=spoc_start_method))
        server.start()
        loops = dict(drain(records, 2))
        assert server.join_all(30) == []
    finally:
        aio._uvloop_factory = saved
    assert loops == {"thread": "uvloop.Loop", "process": "uvloop.Loop"}
    assert loop_factory() is not None


@pytest.mark.parametrize(
    ("timeout", "error", "message"),
    [
        (
            -1,
            ValueError,
            r"Server 'deadlines': run_forever\(\): shutdown_timeout=-1 must be a number of seconds > 0, or None for",
        ),
        (0, ValueError, "shutdown_timeout=0 must"),
        ("5", TypeError, "shutdown_timeout='5' must"),
        (float("nan"), ValueError, "shutdown_timeout=nan must"),
        (True, TypeError, "shutdown_timeout=True must"),
    ],
)
def test_a_bad_shutdown_timeout_is_refused_before_anything_starts(timeout: object, error: type, message: str) -> None:
    worker = WaitsForStop("never")
    server = Server("deadlines")
    server.add_worker(worker)
    with pytest.raises(error, match=message):
        server.run_forever(shutdown_timeout=timeout)  # type: ignore[arg-type]
    assert not worker.started


def test_join_all_refuses_a_negative_timeout_and_takes_none_for_no_limit() -> None:
    server = Server("deadlines")
    server.add_worker(WaitsForStop("w"))
    server.start()
    with pytest.raises(
        ValueError, match=r"join_all\(\): timeout=-1 must be a number of seconds >= 0, or None for no limit"
    ):
        server.join_all(-1)
    server.stop()
    assert server.join_all(None) == []
