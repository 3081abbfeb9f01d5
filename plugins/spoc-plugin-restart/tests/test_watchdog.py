"""The watchdog: hung workers are reported with their stacks; hung process workers are killed and restarted."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from restart_workers import BlocksItsLoop, BlocksItsLoopProcess, Busy, Steady, SteadyProcess, Stuck, StuckProcess
from spoc.testing import HookRecorder, LogLines, ServerFactory, log_lines
from spoc_restart import ALIVE_TOPIC, Backoff, Supervisor
from supervision import data_of, running

FAST = Backoff(initial=0.0, jitter=0.0)


@pytest.fixture
def restart_log() -> Iterator[LogLines]:
    with log_lines("spoc.restart") as lines:
        yield lines


def test_a_hung_thread_is_reported_with_its_stack_and_again_alive(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, restart_log: LogLines
) -> None:
    release = threading.Event()
    supervisor = Supervisor(watchdog_timeout=0.3)
    server = spoc_server(Stuck("stuck", release), plugins=[supervisor])
    server.start()
    running(spoc_hooks, "stuck", 0)
    report = restart_log.wait_for("is hung")
    assert "worker 'stuck' is hung: it has shown no heartbeat for" in report and "(watchdog_timeout=0.3)" in report
    assert "a thread cannot be killed, so it keeps running" in report
    assert "self.release.wait(60)  # a stand-in for a call that never returns" in report  # where it is stuck
    assert supervisor.status(server)["stuck"].hung
    release.set()
    restart_log.wait_for("worker 'stuck' shows it is alive again")
    assert not supervisor.status(server)["stuck"].hung


@pytest.fixture
def spoc_log() -> Iterator[LogLines]:
    with log_lines("spoc") as lines:
        yield lines


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_hung_process_is_reported_killed_and_restarted(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_log: LogLines, start_method: str
) -> None:
    worker = StuckProcess("stuck", start_method=start_method, plugin_options={"watchdog_timeout": 0.3})
    server = spoc_server(worker, plugins=[Supervisor(backoff=FAST)], allow_errors=True)
    server.start()
    first_pid = data_of(running(spoc_hooks, "stuck", 0))["pid"]
    again = running(spoc_hooks, "stuck", 1)
    report = spoc_log.wait_for("is hung")
    assert (
        "worker 'stuck' is hung: it has shown no heartbeat for" in report and f"killing it (pid {first_pid})" in report
    )
    # What happened, in the core's words too: the watchdog, the worker, how long it was silent (issue 37, point 3).
    killed = spoc_log.wait_for("kills worker 'stuck'")
    assert "kills worker 'stuck': spoc-plugin-restart's watchdog: it has shown no heartbeat for" in killed
    assert "(watchdog_timeout=0.3)" in killed
    assert not [line for line in spoc_log.lines if "shutdown" in line]  # nothing is shutting down
    assert "time.sleep(60)  # a stand-in for a call that never returns" in report
    assert again["worker"].previous_exit.outcome == "killed"
    assert again["worker"].previous_exit.exitcode == -signal.SIGKILL


def test_a_blocked_event_loop_is_reported_with_the_blocking_stack(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, restart_log: LogLines
) -> None:
    release = threading.Event()
    server = spoc_server(BlocksItsLoop("blocks", release), plugins=[Supervisor(watchdog_timeout=0.3)])
    server.start()
    running(spoc_hooks, "blocks", 0)
    report = restart_log.wait_for("is hung")
    assert "worker 'blocks' is hung: its event loop has been blocked for" in report
    assert "self.release.wait(60)  # a blocking call inside a coroutine" in report
    release.set()
    restart_log.wait_for("worker 'blocks' shows it is alive again")


def test_a_blocked_event_loop_in_a_process_is_killed_and_restarted(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, restart_log: LogLines
) -> None:
    worker = BlocksItsLoopProcess("blocks", start_method="forkserver")
    server = spoc_server(worker, plugins=[Supervisor(watchdog_timeout=0.3, backoff=FAST)], allow_errors=True)
    server.start()
    running(spoc_hooks, "blocks", 1)
    report = restart_log.wait_for("is hung")
    assert (
        "its event loop has been blocked" in report and "time.sleep(60)  # a blocking call inside a coroutine" in report
    )


def test_busy_and_waiting_workers_are_not_hung(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, restart_log: LogLines
) -> None:
    supervisor = Supervisor(watchdog_timeout=0.2)
    server = spoc_server(Busy("busy"), Steady("waits"), SteadyProcess("waits-in-child"), plugins=[supervisor])
    server.start()
    for name in ("busy", "waits", "waits-in-child"):
        running(spoc_hooks, name, 0)
    # The child's watchdog looks every timeout / 4, as the server's does: 16 rounds are 4 timeouts.
    spoc_hooks.wait_for("worker_record", worker="waits-in-child", topic=ALIVE_TOPIC, data={"round": 16})
    assert not [line for line in restart_log.lines if "hung" in line]


def test_a_child_where_python_cannot_run_is_killed(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, restart_log: LogLines
) -> None:
    """A stopped process stands for one stuck in native code holding the GIL: its own watchdog cannot run."""
    server = spoc_server(
        SteadyProcess("frozen"), plugins=[Supervisor(watchdog_timeout=0.3, backoff=FAST)], allow_errors=True
    )
    server.start()
    pid = data_of(running(spoc_hooks, "frozen", 0))["pid"]
    os.kill(pid, signal.SIGSTOP)
    running(spoc_hooks, "frozen", 1)
    report = restart_log.wait_for("its child's watchdog has not reported")
    assert f"killing it (pid {pid})" in report
