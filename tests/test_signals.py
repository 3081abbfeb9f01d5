"""Real signals sent to a real run_forever() in a subprocess started in its own session."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from typing import Any

import pytest

from harness import App, ready_pids
from spoc._signals import REPEAT_WINDOW, handlers_installed
from spoc.testing import wait_gone

pytestmark = [pytest.mark.signals, pytest.mark.timeout(90)]

BASIC_WORKERS = ("thread-1", "process-1", "async-1")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_shuts_down_gracefully(app_factory: type[App], spoc_start_method: str, signum: int) -> None:
    app = app_factory("basic", "--method", spoc_start_method)
    ready_pids(app, 3)
    app.signal(signum)
    assert app.wait() == 0
    for name in BASIC_WORKERS:
        assert f"TEARDOWN {name}" in app.stdout
    assert f"RESULT reason=signal signal={signal.Signals(signum).name} forced=False ok=True" in app.stdout
    assert app.stdout.rstrip().endswith(f" signals={signal.Signals(signum).name}")  # Server.signals_received
    assert "Traceback" not in app.stderr


def test_a_signal_delivered_to_another_thread_still_stops_the_server(app_factory: type[App]) -> None:
    """Python runs handlers on the main thread only; the kernel may hand the signal to any thread."""
    app = app_factory("basic", "--main-blocks-sigterm")
    ready_pids(app, 3)
    app.expect("HANDLERS-READY")
    app.signal(signal.SIGTERM)
    assert app.wait(30) == 0
    assert "RESULT reason=signal signal=SIGTERM forced=False ok=True" in app.stdout


def test_ctrl_c_to_the_whole_group_is_graceful_in_children(app_factory: type[App], spoc_start_method: str) -> None:
    app = app_factory("processes", "--method", spoc_start_method)
    ready_pids(app, 3)
    app.signal_group(signal.SIGINT)
    assert app.wait() == 0
    assert app.stdout.count("TEARDOWN process-") == 3
    assert "KeyboardInterrupt" not in app.stderr
    assert "Traceback" not in app.stderr
    assert "RESULT reason=signal signal=SIGINT forced=False ok=True" in app.stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_second_signal_forces_shutdown(app_factory: type[App], signum: int) -> None:
    app = app_factory("ignore_stop", "--timeout", "60")
    pids = ready_pids(app, 2)
    app.signal(signum)
    app.expect(r"TEARDOWN thread-1")
    app.expect(r"received SIG\w+: stopping", stream="stderr")
    # A deliberate second request: later than the window that merges repeats. The window opens once the stop
    # requests are out, a moment after the line awaited above (longer on a loaded machine): half a second more.
    time.sleep(REPEAT_WINDOW + 0.5)
    app.signal(signum)
    assert app.wait(timeout=20) == 1
    assert "forcing shutdown" in app.stderr
    assert "forced=True" in app.stdout
    assert "failed=stubborn" in app.stdout
    assert f"signals={signal.Signals(signum).name},{signal.Signals(signum).name}" in app.stdout
    with pytest.raises(ProcessLookupError):
        os.kill(pids["stubborn"], 0)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_signal_while_workers_are_still_starting(app_factory: type[App], method: str) -> None:
    app = app_factory("many", "--method", method)
    app.expect(r"READY process-")
    app.signal_group(signal.SIGINT)
    assert app.wait() == 0
    result = app.expect(r"RESULT reason=signal .* started=(\d+)")[0]
    started = int(result.group(1))
    assert app.stdout.count("TEARDOWN process-") == started
    assert "Traceback" not in app.stderr


def test_forkserver_started_by_someone_else_still_gives_safe_children(app_factory: type[App]) -> None:
    app = app_factory("many", "--method", "forkserver", "--user-forkserver")
    app.expect(r"READY process-")
    app.signal_group(signal.SIGINT)
    assert app.wait() == 0
    assert "Traceback" not in app.stderr
    assert "RESULT reason=signal signal=SIGINT forced=False ok=True" in app.stdout


def test_signal_during_start_leaves_the_remaining_workers_unstarted(app_factory: type[App]) -> None:
    app = app_factory("slow_start")
    app.expect(r"READY process-1 ")
    app.signal_group(signal.SIGINT)
    assert app.wait() == 0
    started = int(app.expect(r"RESULT reason=signal .* started=(\d+)")[0].group(1))
    assert 1 <= started < 10
    assert app.stdout.count("TEARDOWN process-") == started
    assert "Traceback" not in app.stderr


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGUSR2], ids=["SIGKILL", "SIGUSR2"])
def test_worker_killed_from_outside_is_noticed_while_the_others_run_on(
    app_factory: type[App], spoc_start_method: str, signum: signal.Signals
) -> None:
    """The OOM killer's way: SIGKILL to one child while the server runs. And SIGUSR2, which spoc does not handle
    in a child (docs/workers.md, docs/server.md: it asks a late child for its stack over its control pipe):
    without the worker's own handler, its default action ends the child."""
    app = app_factory("processes", "--method", spoc_start_method)
    pids = ready_pids(app, 3)
    os.kill(pids["process-2"], signum)
    app.expect(rf"worker 'process-2' was killed by {signum.name}", stream="stderr")
    app.signal(signal.SIGTERM)
    assert app.wait() == 1
    assert "TEARDOWN process-1" in app.stdout and "TEARDOWN process-3" in app.stdout
    assert "failed=process-2" in app.stdout


def test_killed_parent_leaves_no_children(app_factory: type[App], spoc_start_method: str) -> None:
    app = app_factory("processes", "--method", spoc_start_method)
    pids = ready_pids(app, 3)
    app.signal(signal.SIGKILL)
    app.wait()
    app.expect(r"TEARDOWN process-", count=3, timeout=30)
    for pid in pids.values():
        assert wait_gone(pid, 30.0), f"worker pid {pid} outlived its parent"


def test_a_child_stuck_in_setup_still_notices_its_parent_died(app_factory: type[App], spoc_start_method: str) -> None:
    """A child watches its parent from birth, not only once setup() is done (the orphan deadline ends it)."""
    app = app_factory("stuck_in_setup", "--method", spoc_start_method, "--timeout", "1")
    pid = int(app.expect(r"IN-SETUP stuck-setup pid=(\d+)")[0].group(1))
    app.signal(signal.SIGKILL)
    app.wait()
    app.expect(r"lost its parent and did not stop within 1s", stream="stderr", timeout=30)
    assert wait_gone(pid, 30.0), f"worker pid {pid} outlived its parent"
    assert "MAIN-RAN" not in app.stdout


def test_children_outlive_a_short_lived_starting_thread_but_not_the_parent(
    app_factory: type[App], spoc_start_method: str
) -> None:
    app = app_factory("processes", "--method", spoc_start_method, "--from-thread")
    pids = ready_pids(app, 3)
    app.expect(r"STARTER-EXITED alive=True,True,True")
    app.signal(signal.SIGKILL)
    app.wait()
    app.expect(r"TEARDOWN process-", count=3, timeout=30)
    for pid in pids.values():
        assert wait_gone(pid, 30.0), f"worker pid {pid} outlived its parent"


def test_failed_worker_makes_run_forever_report_failure(app_factory: type[App]) -> None:
    app = app_factory("setup_raises")
    app.expect(r"TEARDOWN broken")
    ready_pids(app, 1)
    app.signal(signal.SIGTERM)
    assert app.wait() == 1
    assert "MAIN-RAN" not in app.stdout
    assert "failed=broken" in app.stdout
    assert app.stderr.count("worker 'broken' failed in setup: setup exploded") == 1
    assert "RuntimeError: setup exploded" in app.stderr


def test_run_forever_returns_when_every_worker_has_ended(app_factory: type[App]) -> None:
    app = app_factory("exit_fast")
    assert app.wait() == 0
    assert "RESULT reason=workers_ended signal=None forced=False ok=True" in app.stdout


def test_process_past_the_deadline_dumps_its_stack_then_is_killed(
    app_factory: type[App], spoc_start_method: str
) -> None:
    app = app_factory("ignore_stop", "--method", spoc_start_method, "--timeout", "1")
    ready_pids(app, 2)
    app.signal(signal.SIGTERM)
    assert app.wait() == 1
    assert re.search(r"worker 'stubborn' \(pid \d+\) did not stop within 1\.\ds: asking for its stack", app.stderr)
    assert re.search(r"stack of worker 'stubborn' \(process, pid \d+\):\n(.+\n)*.*stuck_in_this_function", app.stderr)
    assert "worker 'stubborn'" in app.stderr and "did not react to SIGTERM within 1s" in app.stderr
    assert "worker 'stubborn' was killed by SIGKILL" in app.stderr


def test_stuck_thread_is_named_with_its_stack(app_factory: type[App]) -> None:
    app = app_factory("stuck_thread", "--timeout", "1")
    ready_pids(app, 2)
    app.signal(signal.SIGINT)
    assert app.wait() == 1
    assert re.search(r"worker 'stuck' \(thread\) did not stop within 1\.\ds and is abandoned", app.stderr)
    assert "worker 'stuck' ended (abandoned)" in app.stderr
    assert "in stuck_in_this_function" in app.stderr
    assert "TEARDOWN process-1" in app.stdout


def test_a_signal_that_finds_the_handler_installed_always_reaches_the_wakeup_fd(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """run_forever sets the wakeup fd before its handlers: a signal landing right after the handler was
    installed still wakes the monitor. The other way round it was only recorded, and the server never
    stopped (a main thread blocking SIGTERM made the window wide enough to see in a clean-clone run)."""
    read_end, write_end = os.pipe()
    for fd in (read_end, write_end):
        os.set_blocking(fd, False)
    real_signal = signal.signal
    noted: list[int] = []

    def note(signum: int, frame: object) -> None:
        noted.append(signum)

    def install_then_deliver(signum: int, handler: Any) -> Any:
        previous = real_signal(signum, handler)
        if handler is note:
            signal.pthread_kill(threading.get_ident(), signum)  # the instant after the handler is in place
        return previous

    monkeypatch.setattr(signal, "signal", install_then_deliver)
    try:
        with handlers_installed((signal.SIGUSR2,), note, write_end, lambda: None):
            pass
        assert os.read(read_end, 16) == bytes([signal.SIGUSR2])
        assert noted == [signal.SIGUSR2]
    finally:
        os.close(read_end)
        os.close(write_end)
