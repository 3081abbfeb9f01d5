"""`spoc run` of an app with Ray workers, stopped as an orchestrator stops it: exit 0, nothing left running."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from spoc.testing import App

APP = Path(__file__).parent / "apps" / "ray_app.py"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_spoc_run_of_a_ray_app_stops_cleanly_on_a_signal_and_leaves_no_actor(
    spoc_app: type[App], ray_env: dict[str, str], signum: int
) -> None:
    program = spoc_app(
        command=[sys.executable, "-m", "spoc", "run", f"{APP}:server"], env=ray_env, cwd=APP.parent.parent
    )
    program.expect(r"READY (first|second) pid=\d+", count=2, timeout=120)
    program.signal(signum)
    assert program.wait(60) == 0, program.stderr[-4000:]
    assert "worker 'first' ended (stopped)" in program.stderr and "worker 'second' ended (stopped)" in program.stderr
    # its local Ray was shut down with it: the no_leftovers fixture finds none of its processes
