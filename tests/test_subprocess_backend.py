"""An out-of-process backend built on the public API alone uses the server's one monitor thread."""

from __future__ import annotations

import os
import threading
from typing import Any

from subprocess_backend import SubprocessPlugin

from spoc import ThreadWorker
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
