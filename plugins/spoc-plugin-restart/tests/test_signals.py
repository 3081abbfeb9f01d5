"""A real run_forever() under the supervisor, signalled as a terminal or systemd would: no restart, exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

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
