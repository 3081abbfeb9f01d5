"""The installed plugin's defaults, in real time, under `spoc run` (slow: about two minutes in all).

test_giving_up.py tests the same decisions on an injected clock; these show the numbers the README
promises hold on the real clock, with the real backoff: a 30 s outage from the start is ridden out,
and a worker that never starts is given up on about a minute after its first failure.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from spoc.testing import App

APPS = Path(__file__).parent / "apps"
FAILURE = r"worker 'consumer' failed in setup"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def spoc_run(spoc_app: Callable[..., App], outage_file: Path) -> App:
    """The ``spoc`` command pip installed next to this interpreter, as a service manager would run it."""
    command = [str(Path(sys.executable).with_name("spoc")), "run", "--log-level", "info", "outage:server"]
    return spoc_app(command=command, cwd=APPS, env={"OUTAGE_FILE": str(outage_file)})


def test_a_30_second_outage_from_the_start_is_ridden_out(spoc_app: Callable[..., App], tmp_path: Path) -> None:
    down = tmp_path / "down"
    down.touch()
    app = spoc_run(spoc_app, down)
    app.expect(FAILURE, stream="stderr", timeout=60)
    first_failure = time.monotonic()
    failures = 1
    while time.monotonic() - first_failure < 30:  # the consumer fails at every attempt for 30 s
        failures += 1
        app.expect(FAILURE, stream="stderr", timeout=30, count=failures)
    down.unlink()  # the broker is back
    (up,) = app.expect(r"UP restarts=(\d+)", timeout=20)
    assert int(up[1]) >= failures
    assert "gives up" not in app.stderr
    app.signal(signal.SIGTERM)
    assert app.wait(30) == 0, app.stderr
    assert re.search(rf"worker 'consumer' was restarted {up[1]} times", app.stderr), app.stderr


def test_a_worker_that_never_starts_is_given_up_on_in_about_a_minute(
    spoc_app: Callable[..., App], tmp_path: Path
) -> None:
    down = tmp_path / "down"
    down.touch()
    app = spoc_run(spoc_app, down)
    app.expect(FAILURE, stream="stderr", timeout=60)
    first_failure = time.monotonic()
    assert app.wait(120) == 1, app.stderr
    took = time.monotonic() - first_failure
    assert 60 <= took <= 90, f"gave up {took:.1f}s after the first failure"
    assert re.search(
        r"gives up: worker 'consumer' has never started: \d+ attempt\(s\) in a row failed over [67]\d\.\ds "
        r"\(start_within=60\); its last error: ConnectionRefusedError: consumer: the broker refused the connection",
        app.stderr,
    ), app.stderr
