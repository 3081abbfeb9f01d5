"""The plugin's example runs as written: failures and a hang are restarted, then a clean shutdown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[1] / "examples" / "supervised.py"


@pytest.mark.timeout(60)
def test_the_supervised_example_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=50, start_new_session=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "consumer: running, after 2 restarts" in done.stdout
    assert "poller: running, after 1 restart" in done.stdout
    assert "consumer: 2 restarts, last error: ConnectionError: broker went away (run 1)" in done.stdout
    assert "worker 'poller' is hung: it has shown no heartbeat" in done.stderr
    assert "time.sleep(3600)" in done.stderr  # where it hung
    assert "received SIGTERM: stopping 2 workers" in done.stderr
