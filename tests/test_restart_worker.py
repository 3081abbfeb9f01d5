"""Server.restart_worker: what a supervisor plugin builds on."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import re
import select
import signal
import threading
import warnings
import weakref
from typing import Any

import pytest

from harness import App
from spoc import AbstractWorker, Server, ServerExit, SpocError, SpocWarning, ThreadWorker, WorkerExit, hookimpl
from spoc.testing import HookRecorder, ServerFactory
from workers_for_tests import (
    FailsFirstTime,
    FailsFirstTimeHolding,
    FailsFirstTimeThread,
    HoldsAndFailsProcess,
    HoldsAndFailsThread,
    TearsDownWhenReleased,
    WaitsForStop,
    WaitsForStopProcess,
)


class RestartsFailures:
    """A minimal supervisor: restart a worker that failed, after `delay` seconds."""

    name = "restarts-failures"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.restarted: list[Any] = []

    @hookimpl
    def worker_exited(self, server: Server, worker: Any, exit_info: Any) -> None:
        if exit_info.outcome == "failed":
            self.restarted.append(server.restart_worker(worker, delay=self.delay))


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_failed_worker_is_replaced_by_a_fresh_instance(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, kind: str
) -> None:
    first = FailsFirstTimeThread("flaky") if kind == "thread" else FailsFirstTime("flaky")
    supervisor = RestartsFailures()
    server = spoc_server(first, plugins=[supervisor], allow_errors=True)
    server.start()
    running = spoc_hooks.wait_for("worker_record", worker="flaky", topic="test.running")
    (fresh,) = supervisor.restarted
    assert fresh is not first and fresh.restarts == 1 and running["data"]["restarts"] == 1
    assert fresh.previous_exit is first.exit_info and first.previous_exit is None
    if kind == "process":  # where it lives too: a fork the fork server rebuilds from its own copy included
        assert running["data"]["previous"] == ("failed", "first run fails")
    assert server.workers == (fresh,) and running["worker"] is fresh
    assert first.exit_info is not None and first.exit_info.outcome == "failed"
    if kind == "process":
        assert running["data"]["pid"] == fresh.pid != first.pid
    server.stop()
    assert server.join_all(10) == []
    assert [c["exit_info"].outcome for c in spoc_hooks.of("worker_exited", worker="flaky")] == ["failed", "stopped"]
    assert [e.outcome for e in spoc_hooks.of("server_stopped")[0]["exits"]] == ["stopped"]


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def children_of(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return {int(child) for child in children.read().split()}


def test_a_restarted_fork_worker_keeps_what_its_constructor_was_given(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    """A multiprocessing.Event made before the start (it cannot be pickled) still works after a restart:
    the fork server rebuilds a fork worker from its own copy of the constructor arguments."""
    flag = multiprocessing.Event()
    worker = FailsFirstTimeHolding("holding", flag, start_method="fork")
    server = spoc_server(worker, plugins=[RestartsFailures()], allow_errors=True)
    server.start()
    assert flag.wait(30)
    assert server.workers[0].restarts == 1


def test_with_a_supervisor_a_restart_comes_from_the_fork_server(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    """A plugin may restart workers: the process backend forks its fork server at start, and the restart comes
    from it, never from a program that runs threads."""
    before = children_of(os.getpid())
    first = FailsFirstTime("flaky", start_method="fork")
    server = spoc_server(first, plugins=[RestartsFailures()], allow_errors=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        server.start()  # the worker is forked directly (the program is single-threaded here)
        fork_servers = children_of(os.getpid()) - before - {first.pid}  # the worker may be reaped already
        running = spoc_hooks.wait_for("worker_record", worker="flaky", topic="test.running", data={"restarts": 1})
    assert [str(w.message) for w in caught if issubclass(w.category, SpocWarning)] == []
    assert len(fork_servers) == 1
    assert parent_of(running["data"]["pid"]) in fork_servers


class StartedLines(logging.Handler):
    """The ``worker '<name>' started (pid N)`` lines of the spoc logger: a marker to wait for."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.pids: list[int] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        match = re.fullmatch(r"worker '\S+' started \(pid (\d+)\)", record.getMessage())
        if match:
            with self.changed:
                self.pids.append(int(match.group(1)))
                self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 30.0) -> int:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.pids) >= count, timeout)
            return self.pids[count - 1]


def test_without_a_plugin_a_later_fork_worker_is_spawned_with_a_warning() -> None:
    """A server with no plugin, not run by run_forever(), forks no fork server: a fork worker restarted once
    its threads run is spawned, with a warning that says why, never forked from a program that runs threads."""
    lines, spoc_logger = StartedLines(), logging.getLogger("spoc")
    spoc_logger.addHandler(lines)
    level = spoc_logger.level
    spoc_logger.setLevel(logging.INFO)
    before = children_of(os.getpid())
    first = FailsFirstTime("flaky", start_method="fork")
    server = Server("no-plugin")
    server.add_worker(first)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            server.start()
            fork_servers = children_of(os.getpid()) - before - {first.pid}
            first.join(30)  # it fails in main()
            server.restart_worker(first)
            pid = lines.wait_for(2)
        assert fork_servers == set() and parent_of(pid) == os.getpid()
        spawned = [str(w.message) for w in caught if issubclass(w.category, SpocWarning)]
        assert len(spawned) == 1 and "'flaky' (start_method='fork') is started with 'spawn' instead" in spawned[0]
        assert "forked no fork server at start: no worker needed one then" in spawned[0]
    finally:
        server.stop()
        assert server.join_all(10) == []
        spoc_logger.removeHandler(lines)
        spoc_logger.setLevel(level)


def test_the_delay_runs_on_the_monitor_without_a_sleeping_thread(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    threads_before = threading.active_count()
    flaky = FailsFirstTimeThread("flaky")
    server = spoc_server(flaky, plugins=[RestartsFailures(delay=0.3)], allow_errors=True)
    server.start()
    ended = spoc_hooks.wait_for("worker_exited", worker="flaky")["exit_info"]
    flaky.join(10)  # its last event may reach the monitor before its thread has returned
    assert threading.active_count() <= threads_before + 1  # the monitor; the failed worker's thread is gone
    again = spoc_hooks.wait_for("worker_record", worker="flaky", topic="test.running")["event"]
    failed_at = spoc_hooks.of("worker_error", worker="flaky")[0]["event"].monotonic
    assert again.monotonic - failed_at >= 0.3
    assert ended.outcome == "failed"


def test_no_restart_during_shutdown(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    server = spoc_server(WaitsForStop("w"), FailsFirstTimeThread("late"), allow_errors=True)
    server.start()
    late = server.workers[1]
    spoc_hooks.wait_for("worker_exited", worker="late")
    server.stop()
    assert server.restart_worker(late) is None
    assert server.join_all(10) == []
    assert server.workers[1] is late


def test_a_pending_restart_is_dropped_when_shutdown_begins(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    supervisor = RestartsFailures(delay=60)
    server = spoc_server(FailsFirstTimeThread("flaky"), plugins=[supervisor], allow_errors=True)
    server.start()
    spoc_hooks.wait_for("worker_exited", worker="flaky")
    server.stop()
    assert server.join_all(10) == []
    assert len(spoc_hooks.of("worker_started")) == 1  # the first run only


def test_restart_worker_refuses_a_running_or_foreign_worker(spoc_server: ServerFactory) -> None:
    running = WaitsForStop("running")
    server = spoc_server(running)
    with pytest.raises(SpocError, match="not running"):
        server.restart_worker(running)
    server.start()
    with pytest.raises(ValueError, match="'running' is still running"):
        server.restart_worker(running)
    with pytest.raises(ValueError, match="is not this server's worker 'stranger'"):
        server.restart_worker(WaitsForStop("stranger"))


@pytest.mark.signals
def test_run_forever_waits_for_a_pending_restart(app_factory: type[App]) -> None:
    """A crashed worker with a restart pending does not make run_forever think every worker ended."""
    app = app_factory("restart_after_delay")
    app.expect(r"RUNNING restarts=1", timeout=30)
    app.signal_group(signal.SIGTERM)
    assert app.wait(30) == 0
    assert "reason=signal" in app.stdout


class FailsThrice(ThreadWorker):
    def main(self) -> None:
        if self.restarts < 3:
            raise RuntimeError(f"run {self.restarts} fails")


def test_how_many_restarts_each_worker_had_is_in_its_exit_and_the_servers(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    server = spoc_server(FailsThrice("flaky"), WaitsForStop("steady"), plugins=[RestartsFailures()], allow_errors=True)
    server.start()
    last = spoc_hooks.wait_for("worker_exited", worker=lambda w: w.name == "flaky" and w.restarts == 3)
    assert last["exit_info"].outcome == "clean" and last["exit_info"].restarts == 3
    assert [c["exit_info"].restarts for c in spoc_hooks.of("worker_exited", worker="flaky")] == [0, 1, 2, 3]
    server.stop()
    assert server.join_all(10) == []
    (stopped,) = spoc_hooks.of("server_stopped")
    outcome = ServerExit("s", "stop", exits=stopped["exits"])
    assert outcome.restarts == {"flaky": 3} and outcome.ok  # steady never restarted: left out


class RestartsAndForgets:
    """Restarts every failed worker at once, keeping only weak references to the instances it saw start."""

    name = "restarts-and-forgets"

    def __init__(self, until: int) -> None:
        self.until = until
        self.started: list[weakref.ref[AbstractWorker]] = []
        self.last_started = threading.Event()

    @hookimpl
    def worker_started(self, worker: AbstractWorker) -> None:
        self.started.append(weakref.ref(worker))
        if worker.restarts == self.until:
            self.last_started.set()

    @hookimpl
    def worker_exited(self, server: Server, worker: AbstractWorker, exit_info: WorkerExit) -> None:
        if exit_info.outcome == "failed":
            server.restart_worker(worker)


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_replaced_worker_becomes_garbage_once_its_exit_is_reported(kind: str) -> None:
    """100 restarts of a worker that fails in main() with a megabyte held: only the running instance is alive.

    Not the spoc_server fixture: its hook recorder keeps every worker it is told about.
    """
    supervisor = RestartsAndForgets(until=HoldsAndFailsThread.runs)
    server = Server("leaks", plugins=[supervisor])
    server.add_worker(HoldsAndFailsThread("flaky") if kind == "thread" else HoldsAndFailsProcess("flaky"))
    try:
        server.start()
        assert supervisor.last_started.wait(120), "the 100th restart never started"
        gc.collect()
        alive = [worker for ref in supervisor.started if (worker := ref()) is not None]
        assert len(supervisor.started) == 101
        assert [w.restarts for w in alive] == [100], "ended instances are still referenced"
        assert alive[0].previous_exit is not None and alive[0].previous_exit.error is not None
        assert alive[0].previous_exit.error.exception is not None  # kept, without the frames that held its worker
        assert "run 99 fails" in alive[0].previous_exit.error.traceback
    finally:
        server.stop()
        assert server.join_all(10) == []


# ---------------------------------------------------------------------- the fork server at shutdown


def fork_server_of(server: Server) -> int:
    """The pid of `server`'s fork server, as its process backend knows it from the fork: its title (``spoc:
    <server> fork server``) is set by the fork server itself, a moment later, so a look at ``ps`` may miss it."""
    fork_server = server._backends["process"]._fork_server  # type: ignore[attr-defined]
    assert fork_server is not None and fork_server.pid
    return int(fork_server.pid)


def ended_within(pidfd: int, seconds: float) -> bool:
    """Whether the process behind `pidfd` ended (a zombie counts) within `seconds`."""
    return bool(select.select([pidfd], [], [], seconds)[0])


def test_the_fork_server_ends_when_the_shutdown_begins_not_after_it(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    """With no child of its own, it ends while the workers are still stopping: join_all has nothing to wait for."""
    release = multiprocessing.Event()
    slow = TearsDownWhenReleased("slow", release)  # forked directly: not the fork server's child
    server = spoc_server(slow, plugins=[RestartsFailures()], name="ending")
    server.start()
    spoc_hooks.wait_for("worker_started", worker="slow")
    pidfd = os.pidfd_open(fork_server_of(server))
    try:
        assert not ended_within(pidfd, 0)
        server.stop()
        assert ended_within(pidfd, 10), "the fork server kept running after the shutdown began"
        assert slow.exit_info is None  # its worker is still in its teardown
        release.set()
        assert server.join_all(10) == []
    finally:
        os.close(pidfd)
    assert slow.exit_info is not None and slow.exit_info.outcome == "stopped"


def test_a_fork_server_with_a_child_still_running_reports_its_end_before_it_ends(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    """Its children's exit statuses go through it: had it ended at once, the child would be killed, unreported."""
    release = multiprocessing.get_context("spawn").Event()
    spawned = TearsDownWhenReleased("spawned", release, start_method="spawn")  # made by the fork server
    server = spoc_server(spawned, name="draining")
    server.start()
    spoc_hooks.wait_for("worker_started", worker="spawned")
    pidfd = os.pidfd_open(fork_server_of(server))
    try:
        server.stop()
        spoc_hooks.wait_for("worker_stopping", worker="spawned")
        release.set()
        assert server.join_all(10) == []
        assert ended_within(pidfd, 10)
    finally:
        os.close(pidfd)
    assert spawned.exit_info is not None and spawned.exit_info.outcome == "stopped"


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_an_exit_says_how_long_the_teardown_took(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, kind: str
) -> None:
    """For a metrics plugin's teardown histogram, without a worker_event hook: None when no teardown ran."""
    worker = WaitsForStop("w") if kind == "thread" else WaitsForStopProcess("w", multiprocessing.Event())
    server = spoc_server(worker)
    server.start()
    spoc_hooks.wait_for("worker_started", worker="w")
    server.stop()
    assert server.join_all(10) == []
    assert worker.exit_info is not None and isinstance(worker.exit_info.teardown_duration, float)
    assert worker.exit_info.teardown_duration >= 0


def test_a_killed_process_has_no_teardown_duration(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    victim = WaitsForStopProcess("victim", multiprocessing.Event())
    server = spoc_server(victim, allow_errors=True)
    server.start()
    spoc_hooks.wait_for("worker_started", worker="victim")
    assert server.kill_worker(victim)
    exited = spoc_hooks.wait_for("worker_exited", worker="victim")["exit_info"]
    assert exited.outcome == "killed" and exited.teardown_duration is None
