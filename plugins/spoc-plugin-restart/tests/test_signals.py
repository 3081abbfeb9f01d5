"""A real run_forever() under the supervisor, signalled as a terminal or systemd would: no restart, exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

APP = Path(__file__).parent / "apps" / "signalled.py"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_supervised_server_and_nothing_restarts(signum: int) -> None:
    process = subprocess.Popen(
        [sys.executable, str(APP)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line.strip())
            if line.strip() == "READY":
                break
        os.killpg(process.pid, signum)  # the whole group, as Ctrl+C or systemd's control-group kill
        rest, errors = process.communicate(timeout=30)
        lines += rest.splitlines()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, errors
    assert "DONE signal ['stopped', 'stopped'] code=0" in lines
    assert sorted(line for line in lines if line.startswith("STARTED")) == [
        "STARTED process restarts=0",
        "STARTED thread restarts=0",
    ]
    assert "restarting" not in errors


@pytest.mark.timeout(90)
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_workers_own_handlers_just_run_before_and_after_a_restart(spoc_app: Any, method: str) -> None:
    """Under the supervisor, the first child is forked directly and the restarted one comes from the fork server:
    in both, SIGHUP, SIGUSR1 and SIGUSR2 run the worker's own handlers and nothing else."""
    app = spoc_app(method, script=Path(__file__).parent / "apps" / "own_handlers.py")
    for restarts in (0, 1):
        (ready,) = app.expect(rf"READY pid=(\d+) restarts={restarts}")
        pid = int(ready.group(1))
        for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            os.kill(pid, signum)
            app.expect(f"HANDLED {signum.name} restarts={restarts}")
        if restarts == 0:
            os.kill(pid, signal.SIGKILL)  # a failure: the supervisor restarts it
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "DONE signal ['stopped'] code=0" in app.stdout  # the restarted run, stopped
    assert "SpocWarning" not in app.stderr  # the restart was not spawned instead of forked
