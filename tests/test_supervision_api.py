"""The core API supervisors and watchdogs build on: heartbeats, phase, loop, stacks, kill_worker,
stop(failure=...) and plugin_options."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import threading

import pytest

from spoc import ProcessWorker, ThreadWorker
from spoc.testing import HookRecorder, ServerFactory
from workers_for_tests import WaitsForStop, WaitsForStopProcess


class Beats(ThreadWorker):
    """Does what the test tells it, one step at a time, and says when each step is done."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.go = threading.Semaphore(0)
        self.done = threading.Semaphore(0)
        self.step = ""

    def main(self) -> None:
        while True:
            self.go.acquire()
            if self.step == "read is_running":
                _ = self.is_running
            elif self.step == "heartbeat":
                self.heartbeat()
            elif self.step == "wait":
                self.done.release()
                self.wait(60)  # until the stop
                return
            elif self.step == "nothing":
                pass
            self.done.release()

    def do(self, step: str) -> None:
        self.step = step
        self.go.release()
        assert self.done.acquire(timeout=10)


def test_is_running_heartbeat_and_wait_show_the_worker_alive(spoc_server: ServerFactory) -> None:
    worker = Beats("beats")
    spoc_server(worker).start()
    worker.do("nothing")
    seen = worker.heartbeats  # what the start did
    worker.do("nothing")
    assert worker.heartbeats == seen
    worker.do("read is_running")
    assert worker.heartbeats > seen
    seen = worker.heartbeats
    assert worker.heartbeats == seen  # each heartbeat counts once
    worker.do("heartbeat")
    assert worker.heartbeats > seen
    other_watchdog = seen  # a second reader sees the same heartbeat: reading takes nothing from the first
    assert worker.heartbeats > other_watchdog
    worker.do("wait")
    seen = worker.heartbeats
    assert worker.heartbeats > seen  # idle in wait(): alive at every read


class ReportsWhereItIs(ThreadWorker):
    async def setup(self) -> None:
        self.seen = [(self.lifecycle_phase, self.running_loop is asyncio.get_running_loop())]

    async def main(self) -> None:
        self.seen.append((self.lifecycle_phase, self.running_loop is asyncio.get_running_loop()))
        stack = await asyncio.get_running_loop().run_in_executor(None, self.current_stack)
        self.stack = stack

    async def teardown(self) -> None:
        self.seen.append((self.lifecycle_phase, self.running_loop is asyncio.get_running_loop()))


def test_phase_loop_and_stack_where_the_body_lives(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    worker = ReportsWhereItIs("where")
    assert worker.lifecycle_phase is None and worker.running_loop is None and worker.current_stack() is None
    spoc_server(worker).start()
    spoc_hooks.wait_for("worker_exited", worker="where")
    assert worker.seen == [("setup", True), ("main", True), ("teardown", True)]
    assert "in main" in worker.stack and "run_in_executor" in worker.stack
    assert worker.lifecycle_phase is None and worker.running_loop is None and worker.current_stack() is None


class ReportsItsStackInTheChild(ProcessWorker):
    def main(self) -> None:
        stack: list[str | None] = []
        reader = threading.Thread(target=lambda: stack.append(self.current_stack()))
        reader.start()
        reader.join()
        self.send_record("test.stack", stack=stack[0], phase=self.lifecycle_phase)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_process_worker_knows_its_stack_and_phase_in_its_child(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, start_method: str
) -> None:
    worker = ReportsItsStackInTheChild("child", start_method=start_method)
    spoc_server(worker).start()
    record = spoc_hooks.wait_for("worker_record", topic="test.stack")["data"]
    assert record["phase"] == "main" and "in main" in record["stack"] and "reader." in record["stack"]
    assert worker.current_stack() is None  # not in the server's process


def test_kill_worker_kills_a_process_worker_and_not_a_thread(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    ready = multiprocessing.Event()
    process, thread = WaitsForStopProcess("process", ready), WaitsForStop("thread")
    server = spoc_server(process, thread, allow_errors=True)
    server.start()
    assert ready.wait(30) and thread.ready.wait(10)
    assert server.kill_worker(thread) is False
    assert server.kill_worker(process) is True
    ended = spoc_hooks.wait_for("worker_exited", worker="process")["exit_info"]
    assert (ended.outcome, ended.exitcode) == ("killed", -signal.SIGKILL)
    assert server.kill_worker(process) is False  # no longer running


def test_stop_with_a_failure_makes_run_forever_report_it(spoc_server: ServerFactory) -> None:
    worker = WaitsForStop("clean")
    server = spoc_server(worker)
    threading.Thread(target=lambda: worker.ready.wait(10) and server.stop(failure="gave up on 'x'")).start()
    outcome = server.run_forever(shutdown_timeout=10)
    assert [e.outcome for e in outcome.exits] == ["stopped"]
    assert outcome.failure == "gave up on 'x'" and not outcome.ok and outcome.exit_code == 1


class ReportsOptions(ProcessWorker):
    def main(self) -> None:
        self.send_record("test.options", options=dict(self.plugin_options))


def test_plugin_options_reach_the_child_and_a_fresh_instance(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    worker = ReportsOptions("opts", start_method="spawn", plugin_options={"restart_policy": "always"})
    assert worker.fresh_instance().plugin_options == {"restart_policy": "always"}
    with pytest.raises(TypeError):
        worker.plugin_options["restart_policy"] = "never"  # type: ignore[index]
    spoc_server(worker).start()
    assert spoc_hooks.wait_for("worker_record", topic="test.options")["data"] == {
        "options": {"restart_policy": "always"}
    }


def test_plugin_options_must_be_a_mapping() -> None:
    with pytest.raises(TypeError, match=r"ReportsOptions 'bad': plugin_options must be a mapping.*got str"):
        ReportsOptions("bad", plugin_options="always")  # type: ignore[arg-type]
