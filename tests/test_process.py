"""Process workers: what reaches the parent, what cannot travel, deaths, fds, and fork safety."""

from __future__ import annotations

import gc
import logging
import os
import queue
import subprocess
import sys
import threading
from typing import Any

import pytest

from spoc import ProcessWorker, Server, SpocWarning, ThreadOnlyObjectWarning, ThreadWorker, WorkerStartError
from spoc._linux import other_threads
from spoc.testing import HookRecorder
from workers_for_tests import (
    ExitsAtOnce,
    KillsItself,
    Raises,
    RaisesUnpicklable,
    RecordingProcess,
    ReportsProcessName,
    RunsSubprocess,
    WaitsForStop,
    drain,
    journal,
    run_in_server,
)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_child_exception_reaches_the_parent_as_an_error_record(spoc_start_method: str, caplog: Any) -> None:
    worker = Raises("raiser", start_method=spoc_start_method)
    with caplog.at_level(logging.ERROR, logger="spoc"):
        run_in_server(worker)
    record = worker.error
    assert record is not None
    assert (record.type_name, record.message, record.phase) == ("LookupError", "no such job: 42", "main")
    assert 'raise LookupError("no such job: 42")' in record.traceback
    assert isinstance(record.exception, LookupError)
    assert worker.exitcode == 1
    failures = [r for r in caplog.records if "failed in main" in r.getMessage()]
    assert len(failures) == 1
    assert "raiser" in failures[0].getMessage() and "no such job: 42" in failures[0].getMessage()


def test_an_exception_that_does_not_pickle_still_reports_its_facts() -> None:
    worker = RaisesUnpicklable("odd")
    worker.start()
    worker.join(30)
    assert worker.error is not None
    assert worker.error.type_name == "workers_for_tests.CustomError"
    assert worker.error.message == "7: does not survive pickling"
    assert worker.error.exception is None
    assert "CustomError" in worker.error.traceback


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_unpicklable_worker_fails_at_start_naming_the_attribute(method: str) -> None:
    class Holder:
        def __init__(self) -> None:
            self.callback = lambda: None

    worker = ExitsAtOnce("holder", start_method=method)
    worker.settings = {"retry": Holder()}  # type: ignore[attr-defined]
    with pytest.raises(WorkerStartError) as caught:
        worker.start()
    message = str(caught.value)
    assert "'holder'" in message
    assert "self.settings['retry'].callback" in message
    assert not worker.started


def test_thread_only_objects_on_a_process_worker_are_named(spoc_start_method: str) -> None:
    worker = ExitsAtOnce("pipeline", start_method=spoc_start_method)
    worker.jobs = queue.Queue()  # type: ignore[attr-defined]
    with pytest.warns(
        ThreadOnlyObjectWarning, match=r"'pipeline' holds a queue\.Queue in self\.jobs.*multiprocessing\.Queue"
    ) as warned:
        try:
            worker.start()
        except WorkerStartError as exc:
            assert spoc_start_method != "fork"
            assert "self.jobs" in str(exc) and "multiprocessing.Queue()" in str(exc)
            return
        finally:
            assert warned[0].filename == __file__  # the user's line, not spoc's
    worker.join(30)


def test_a_thread_only_object_warning_under_a_server_points_at_the_users_line() -> None:
    worker = ExitsAtOnce("pipeline")
    worker.jobs = queue.Queue()  # type: ignore[attr-defined]
    server = Server("warns")
    server.add_worker(worker)
    with pytest.warns(ThreadOnlyObjectWarning) as warned:
        server.start()
    assert server.join_all(30) == []
    assert warned[0].filename == __file__  # server.start(), here: not spoc/_server.py
    assert worker.exitcode == 0


def test_sigkilled_process_worker_is_reported_with_exitcode_minus_9(spoc_start_method: str, caplog: Any) -> None:
    worker = KillsItself("victim", start_method=spoc_start_method)
    with caplog.at_level(logging.ERROR, logger="spoc"):
        run_in_server(worker)
    assert worker.exitcode == -9
    assert worker.exit_info is not None and worker.exit_info.outcome == "killed"
    assert any("killed by SIGKILL" in r.getMessage() for r in caplog.records)


def test_joined_process_workers_leave_no_fd_behind() -> None:
    gc.collect()
    before = open_fds()
    for batch in range(10):
        server = Server(f"batch-{batch}")
        for i in range(20):
            server.add_worker(ExitsAtOnce(f"w{i}"))
        server.start()
        assert server.join_all(60) == []
    alone = ExitsAtOnce("alone")
    alone.start()
    alone.join(30)
    gc.collect()
    assert open_fds() <= before


def test_a_subprocess_started_in_a_worker_keeps_its_exit_code() -> None:
    records = journal()
    server = Server()
    server.add_worker(RunsSubprocess("popen", records))
    server.add_worker(ExitsAtOnce("sibling"))
    server.start()
    assert drain(records, 1) == [("popen", "popen", "3")]
    assert server.join_all(30) == []


def test_process_worker_started_while_thread_workers_run(spoc_start_method: str) -> None:
    records = journal()
    server = Server("mixed")
    waiters = [WaitsForStop(f"thread-{i}") for i in range(3)]
    for waiter in waiters:
        server.add_worker(waiter)
    server.start()
    for waiter in waiters:
        assert waiter.ready.wait(10)
    assert threading.active_count() > 3
    late = RecordingProcess("late", records, start_method=spoc_start_method)
    if spoc_start_method == "fork":  # the server forked no fork server at start: no clean snapshot to fork from
        with pytest.warns(SpocWarning, match="'late' .* with 'spawn' instead: server 'mixed' forked no fork server"):
            server.add_worker(late)
    else:
        server.add_worker(late)
    assert [r[1:] for r in drain(records, 3)] == [("setup",), ("lifecycle", "startup"), ("main",)]
    server.stop()
    assert server.join_all(30) == []
    assert late.exitcode == 0


class ReportsParent(ProcessWorker):
    def __init__(self, name: str, records: Any) -> None:
        super().__init__(name, start_method="fork")
        self.records = records

    def main(self) -> None:
        self.records.put((self.name, os.getppid()))


def test_fork_is_direct_only_while_single_threaded_then_from_the_fork_server() -> None:
    records = journal()
    server = Server(plugins=[HookRecorder()])  # with a plugin, workers may start later: a fork server at start
    server.add_worker(ReportsParent("at-start", records))
    waiter = WaitsForStop("busy-thread")
    server.add_worker(waiter)
    single_threaded = other_threads() is None  # queue feeder threads do not count
    server.start()
    ((_, parent_at_start),) = drain(records, 1)
    assert waiter.ready.wait(10)
    server.add_worker(ReportsParent("while-threads-run", records))
    ((_, parent_later),) = drain(records, 1)
    server.stop()
    assert server.join_all(30) == []
    assert (parent_at_start == os.getpid()) is single_threaded
    assert parent_later != os.getpid()


BACK_TO_BACK = """
from spoc import ProcessWorker, Server
from spoc._linux import is_single_threaded

class Quick(ProcessWorker):
    def main(self):
        pass

assert is_single_threaded()
for round_ in range(100):
    server = Server(f"round-{round_}")
    server.add_worker(Quick("quick", start_method="fork"))
    server.start()
    assert server.join_all(30) == []
    assert is_single_threaded(), f"round {round_}: a thread of the server outlived join_all()"
print("ALL-DIRECT")
"""


def test_servers_started_back_to_back_each_fork_directly() -> None:
    """join_all() returns once the server's own threads are gone from the OS, not only from Python.

    A thread lingers in the kernel for a moment after Thread.join(); a server
    started in that moment would find the process multi-threaded and lose its
    safe direct fork. Run in a fresh interpreter: this one runs other threads.
    """
    result = subprocess.run(
        [sys.executable, "-c", BACK_TO_BACK], capture_output=True, text=True, timeout=60, start_new_session=True
    )
    assert result.returncode == 0 and "ALL-DIRECT" in result.stdout, result.stderr


def test_the_child_process_is_named_after_its_worker(spoc_start_method: str) -> None:
    """multiprocessing.current_process().name (logging's processName) says which worker a line is from."""
    records = journal()
    run_in_server(ReportsProcessName("named", records, start_method=spoc_start_method))
    assert drain(records, 1) == [("named", "spoc:named")]


def test_stop_before_start_means_the_child_stops_at_once() -> None:
    worker = WaitsForStopProcess_factory()
    worker.stop()
    worker.start()
    worker.join(30)
    assert worker.exitcode == 0


def WaitsForStopProcess_factory() -> ProcessWorker:
    import multiprocessing

    from workers_for_tests import WaitsForStopProcess

    return WaitsForStopProcess("early-stop", multiprocessing.get_context("fork").Event())


def test_thread_worker_is_not_a_process() -> None:
    class T(ThreadWorker):
        def main(self) -> None:
            pass

    t = T("t")
    t.start()
    t.join(10)
    assert t._thread_or_process is not None and not t._thread_or_process.is_alive()


def test_a_first_sigterm_after_the_stop_request_is_still_graceful(spoc_start_method: str) -> None:
    """systemd's control-group kill: the parent relays stop, then the child's own SIGTERM lands."""
    import multiprocessing
    import signal

    from workers_for_tests import SlowTeardown

    context = multiprocessing.get_context(spoc_start_method)
    stopping, proceed, records = context.Event(), context.Event(), journal()
    worker = SlowTeardown("slow", stopping, proceed, records, start_method=spoc_start_method)
    server = Server()
    server.add_worker(worker)
    server.start()
    server.stop()
    assert stopping.wait(30)
    worker.send_signal(signal.SIGTERM)
    proceed.set()
    assert drain(records, 1) == [("slow", "teardown done")]
    assert server.join_all(30) == []
    assert worker.exitcode == 0


def test_interpreter_exit_waits_for_a_non_daemon_process_worker(app_factory: Any) -> None:
    from harness import APPS

    app = app_factory("non-daemon", script=APPS / "exit_with_worker.py")
    assert app.wait(30) == 0
    assert "FINISHED stop_requested=False" in app.stdout


def test_a_daemon_process_worker_stops_when_the_program_exits(app_factory: Any) -> None:
    from harness import APPS

    app = app_factory("daemon", script=APPS / "exit_with_worker.py")
    assert app.wait(30) == 0
    app.expect("FINISHED stop_requested=True", timeout=30)


def test_run_forever_stops_what_it_started_when_a_worker_cannot_start() -> None:
    started = WaitsForStop("fine")
    broken = ExitsAtOnce("broken", start_method="spawn")
    broken.hook = lambda: None  # type: ignore[attr-defined]
    server = Server("half-started")
    server.add_worker(started)
    server.add_worker(broken)
    with pytest.raises(WorkerStartError, match=r"'broken' .*self\.hook does not pickle"):
        server.run_forever(shutdown_timeout=10)
    assert started.exit_info is not None and started.exit_info.outcome == "stopped"
    assert not started.is_alive()


def test_workers_run_when_fd_numbers_are_above_1023() -> None:
    """select() cannot watch fd numbers of 1024 and up; a busy server reaches them."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1200
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    filler = []
    try:
        while True:
            fd = os.open(os.devnull, os.O_RDONLY)
            filler.append(fd)
            if fd >= 1100:
                break
        worker = ExitsAtOnce("high-fds", start_method="spawn")
        run_in_server(worker)
        assert worker.exitcode == 0
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


NATIVE_THREADS = r"""
import _thread, threading, time
from spoc._linux import other_threads

held = threading.Lock()
held.acquire()
for _ in range(20):  # threads threading does not list, as an extension module's native threads
    _thread.start_new_thread(held.acquire, ())
began = time.monotonic()
print(other_threads(), round(time.monotonic() - began, 3))
"""


def test_native_threads_that_never_end_share_one_short_wait() -> None:
    # An extension's native threads (Ray's: 23) are not exiting Python threads: the check that a server
    # may fork gives them all one 0.1 s to be gone, not 0.1 s each (2.3 s at every start).
    done = subprocess.run([sys.executable, "-c", NATIVE_THREADS], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    said, elapsed = done.stdout.rsplit(" ", 1)
    assert said == "20 native threads (not started with threading: by an extension module, or with _thread)"
    assert float(elapsed) < 1.0  # each its own 0.1 s: 2 s
