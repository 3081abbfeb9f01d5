"""An out-of-process backend built on the public API alone uses the server's one monitor thread."""

from __future__ import annotations

import os
import threading
from typing import Any

from subprocess_backend import SubprocessPlugin

import child_hook_plugin
import spoc
from spoc import ProcessWorker, ThreadWorker, hookimpl
from spoc.backends import WorkerChannel
from spoc.testing import HookRecorder, ServerFactory


class Elsewhere(ThreadWorker):
    """Lives in a subprocess: tells where it runs, waits for the stop, and says so in its teardown."""

    backend = "subprocess"

    def setup(self) -> None:
        self.send_record("test.where", pid=os.getpid())

    def main(self) -> None:
        self.wait()

    def teardown(self) -> None:
        self.send_record("test.teardown")


class Fails(Elsewhere):
    def main(self) -> None:
        raise LookupError("no such job")


def test_a_subprocess_backends_events_reach_the_hooks_on_the_monitor_thread(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    threads_before = set(threading.enumerate())  # a thread of an earlier test may be ending: compare the new ones
    server = spoc_server(Elsewhere("far"), Fails("failing"), plugins=[SubprocessPlugin()], allow_errors=True)
    server.start()
    where = spoc_hooks.wait_for("worker_record", worker="far", topic="test.where")
    assert where["data"]["pid"] != os.getpid()
    assert spoc_hooks.wait_for("worker_started", worker="far")["event"].pid == where["data"]["pid"]
    new_threads = [thread.name for thread in set(threading.enumerate()) - threads_before]
    assert new_threads == ["spoc-monitor:test"], new_threads  # no reader thread of the backend's
    failed = spoc_hooks.wait_for("worker_exited", worker="failing")["exit_info"]
    assert failed.outcome == "failed" and failed.error.type_name == "LookupError"
    assert "no such job" in failed.error.traceback
    server.stop()
    assert server.join_all(30) == []
    assert spoc_hooks.of("worker_record", worker="far", topic="test.teardown")
    assert spoc_hooks.wait_for("worker_exited", worker="far")["exit_info"].outcome == "stopped"


def test_a_killed_subprocess_ends_its_worker_with_the_signal(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    server = spoc_server(Elsewhere("doomed"), plugins=[SubprocessPlugin()], allow_errors=True)
    server.start()
    spoc_hooks.wait_for("worker_started", worker="doomed")
    (worker,) = server.workers
    assert server.kill_worker(worker)
    exit_info: Any = spoc_hooks.wait_for("worker_exited", worker="doomed")["exit_info"]
    assert (exit_info.outcome, exit_info.signal) == ("killed", "SIGKILL")


class ElsewhereProcess(ProcessWorker):
    """A process worker hosted by another backend: where it runs, which worker that process is, its teardown."""

    backend = "hosted"

    def setup(self) -> None:
        current = spoc.current_worker()
        self.send_record("test.where", pid=os.getpid(), current=None if current is None else current.name)

    def main(self) -> None:
        self.wait()

    def teardown(self) -> None:
        self.send_record("test.teardown")


def test_a_process_worker_hosted_by_another_backend_lives_as_in_its_child_with_the_child_hooks(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    plugins = [SubprocessPlugin(), child_hook_plugin, child_hook_plugin.AnnouncesEvents()]
    server = spoc_server(ElsewhereProcess("far"), plugins=plugins, name="host-test")
    server.start()
    where = spoc_hooks.wait_for("worker_record", worker="far", topic="test.where")["data"]
    assert where["pid"] != os.getpid() and where["current"] == "far"
    starting = spoc_hooks.wait_for("worker_record", worker="far", topic="test.child_starting")["data"]
    assert (starting["pid"], starting["server"]) == (where["pid"], "host-test")
    spoc_hooks.wait_for("worker_started", worker="far")  # a stop during setup() would come before "startup"
    server.stop()  # carried there by the backend: its wait() returns, its teardown runs
    assert server.join_all(30) == []
    topics = [
        call["topic"] if call["topic"] != "test.child_event" else call["data"]["kind"]
        for call in spoc_hooks.of("worker_record", worker="far")
    ]
    assert topics == [
        "test.child_starting",
        "test.where",
        "startup",
        "stopping",
        "test.teardown",
        "shutdown",
        "test.child_stopping",
    ]
    assert spoc_hooks.wait_for("worker_exited", worker="far")["exit_info"].outcome == "stopped"


def test_a_backend_that_sees_a_hosted_life_end_from_outside_says_why_and_it_is_killed(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    server = spoc_server(ElsewhereProcess("doomed"), plugins=[SubprocessPlugin()], allow_errors=True)
    server.start()
    pid = spoc_hooks.wait_for("worker_record", worker="doomed", topic="test.where")["data"]["pid"]
    (worker,) = server.workers
    assert server.kill_worker(worker)
    exit_info: Any = spoc_hooks.wait_for("worker_exited", worker="doomed")["exit_info"]
    assert (exit_info.outcome, exit_info.exitcode) == ("killed", None)
    assert exit_info.reason == f"its host process {pid} ended (-9)"


class Prints(Elsewhere):
    def main(self) -> None:
        print("hello from a subprocess", flush=True)  # its stdout carries the events: prints go to its stderr
        self.send_record("test.printed")
        self.wait()


class CapturesStderr:
    """Gives each worker's process a pipe as its stderr (``worker_stdio``) and reads it on the monitor thread."""

    name = "captures-stderr"

    def __init__(self) -> None:
        self.text = bytearray()
        self.got = threading.Event()

    @hookimpl
    def worker_stdio(self, channel: WorkerChannel) -> dict[int, int]:
        read_end, write_end = os.pipe()

        def on_readable() -> None:
            data = os.read(read_end, 65536)
            self.text.extend(data)
            if b"\n" in self.text:
                self.got.set()
            if not data:
                channel.unwatch(read_end)
                os.close(read_end)

        channel.watch(read_end, on_readable)
        return {2: write_end}


def test_a_third_party_backend_gives_its_process_the_stdio_the_plugins_ask_for(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    capture = CapturesStderr()
    server = spoc_server(Prints("talker"), plugins=[SubprocessPlugin(), capture])
    server.start()
    spoc_hooks.wait_for("worker_record", worker="talker", topic="test.printed")
    assert capture.got.wait(30)
    assert capture.text.decode() == "hello from a subprocess\n"
    server.stop()
    assert server.join_all(30) == []
