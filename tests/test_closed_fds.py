"""A process worker that closes the fds it inherited (``os.closerange()``, as daemon-style libraries do) takes
its server's pipes with them: its teardown still runs, the server still stops it, its own files get none of
spoc's bytes, and the server says what happened in words (issue 33).

Each program runs in its own session (harness.App), under ``spoc run`` or its own ``run_forever()``.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from harness import APPS, App, ready_pids

pytestmark = [pytest.mark.signals, pytest.mark.timeout(90)]

CLOSED = "worker 'closer' (pid {pid}) closed the pipes the server gave its process (os.closerange()"


def start(app_factory: type[App], tmp_path: Path, method: str, after: str, under: str = "spoc run") -> App:
    """The fault app's ``closes_fds`` scenario, its worker going on as `after` says once it closed its fds."""
    env = {"SCENARIO": "closes_fds", "METHOD": method, "AFTER_CLOSING": after, "USER_FILE": str(tmp_path / "own")}
    if under == "spoc run":
        command = [sys.executable, "-m", "spoc", "run", f"{APPS / 'faults.py'}:from_environment"]
        return app_factory(command=command, env=env)
    return app_factory("closes_fds", "--method", method, env=env)


def closed(app: App) -> int:
    """Wait until the worker has closed its fds; return its pid."""
    pid = ready_pids(app, 2)["closer"]
    app.expect(r"CLOSED closer own_fd=\d+")
    return pid


def assert_no_spoc_noise(app: App, tmp_path: Path) -> None:
    """No traceback of spoc's, and not a byte of spoc's in the file that took the number of one of its pipes."""
    assert "Traceback" not in app.stderr, app.stderr
    assert "Bad file descriptor" not in app.stderr, app.stderr
    assert (tmp_path / "own").read_bytes() == b""


@pytest.mark.parametrize("under", ["spoc run", "run_forever"])
@pytest.mark.parametrize("after", ["wait", "sleep"])
@pytest.mark.parametrize("how", ["pid", "group"])
def test_a_stop_still_stops_it_gracefully(
    app_factory: type[App], tmp_path: Path, spoc_start_method: str, after: str, how: str, under: str
) -> None:
    """SIGTERM to the server (its pid, or its whole group): the server can no longer write its stop request,
    so it sends the child a SIGTERM; the worker stops, its teardown runs, and the shutdown is clean."""
    app = start(app_factory, tmp_path, spoc_start_method, after, under)
    pid = closed(app)
    if how == "pid":
        app.signal(signal.SIGTERM)
    else:
        app.signal_group(signal.SIGTERM)
    assert app.wait(30) == 0, app.stderr
    assert app.stdout.count("TEARDOWN closer") == 1
    assert CLOSED.format(pid=pid) in app.stderr
    assert "the server heard none of its events since" in app.stderr
    if how == "pid":  # the group's SIGTERM may have ended it before the server's stop came
        assert "the server heard none of its events since, and stopped it with SIGTERM" in app.stderr
    assert "it ended without error after its teardown" in app.stderr
    assert "worker 'closer' ended (stopped)" in app.stderr
    assert "did not stop within" not in app.stderr  # stopped at once, not at the deadline
    assert_no_spoc_noise(app, tmp_path)


def test_a_worker_that_returns_ends_clean(app_factory: type[App], tmp_path: Path, spoc_start_method: str) -> None:
    app = start(app_factory, tmp_path, spoc_start_method, "return")
    pid = closed(app)
    app.expect(r"worker 'closer' ended \(clean\)", stream="stderr")
    app.signal(signal.SIGTERM)  # the thread worker keeps the server up
    assert app.wait(30) == 0, app.stderr
    assert app.stdout.count("TEARDOWN closer") == 1
    assert CLOSED.format(pid=pid) in app.stderr
    assert "it ended without error after its teardown" in app.stderr
    assert_no_spoc_noise(app, tmp_path)


@pytest.mark.parametrize("under", ["spoc run", "run_forever"])
def test_a_failure_after_closing_is_printed_and_reported(
    app_factory: type[App], tmp_path: Path, spoc_start_method: str, under: str
) -> None:
    """The error cannot reach the server: the child prints its traceback on its stderr, and the server says so."""
    app = start(app_factory, tmp_path, spoc_start_method, "raise", under)
    pid = closed(app)
    app.expect(r"worker 'closer' exited with code 1", stream="stderr")
    app.signal(signal.SIGTERM)
    assert app.wait(30) == 1, app.stderr
    assert app.stdout.count("TEARDOWN closer") == 1
    assert f"spoc: worker 'closer' (pid {pid}) failed in main, and cannot tell its server" in app.stderr
    assert "ValueError: failed after closing its fds" in app.stderr  # the worker's own traceback, whole
    assert CLOSED.format(pid=pid) in app.stderr
    assert "it failed, its error printed on its stderr, and ran its teardown" in app.stderr
    assert "_child.py" not in app.stderr  # nothing of spoc's in that traceback
    assert (tmp_path / "own").read_bytes() == b""


def test_it_still_stops_when_its_server_is_killed(app_factory: type[App], tmp_path: Path) -> None:
    """The parent-death signal is then the only news of the server's death: the worker stops, its teardown runs,
    and its process ends (the leftover check fails the test otherwise)."""
    app = start(app_factory, tmp_path, "fork", "wait")
    closed(app)
    app.signal(signal.SIGKILL)
    assert app.wait(30) == -signal.SIGKILL
    app.expect("TEARDOWN closer")
    assert (tmp_path / "own").read_bytes() == b""
