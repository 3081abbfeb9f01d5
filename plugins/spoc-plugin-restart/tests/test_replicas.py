"""Replicas under the supervisor (issue 30): each replica is a worker with its own policy state, a sibling of the
others in their order, and a scale-down is not a failure; under a real ``spoc run``, signalled from outside."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from spoc.testing import App

pytestmark = pytest.mark.timeout(60)

APP = Path(__file__).resolve().parent / "apps" / "replicated.py"


def ready(app: App, name: str, restarts: int) -> int:
    """The pid of `name`'s run number `restarts` (0: the first), once it printed READY."""
    (match,) = app.expect(rf"READY {re.escape(name)} replica=\d pid=(\d+) restarts={restarts}$")
    return int(match.group(1))


def start(spoc_app: Callable[..., App], **env: str) -> App:
    app = spoc_app(command=[sys.executable, "-m", "spoc", "run", f"{APP}:server"], env=env)
    return app


def test_a_replica_killed_from_outside_is_restarted_under_its_own_name(spoc_app: Callable[..., App]) -> None:
    app = start(spoc_app)
    first = {name: ready(app, name, 0) for name in ("proc-1", "proc-2", "proc-3", "other")}
    os.kill(first["proc-2"], signal.SIGKILL)
    again = ready(app, "proc-2", 1)
    assert again != first["proc-2"]
    app.expect(r"worker 'proc-2' was killed by SIGKILL", stream="stderr")
    assert "restarts=1" not in app.stdout.replace(f"READY proc-2 replica=2 pid={again} restarts=1", "")
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "worker 'proc-2' was restarted 1 time" in app.stderr


def test_one_for_all_restarts_every_replica_and_sibling(spoc_app: Callable[..., App]) -> None:
    app = start(spoc_app, STRATEGY="one_for_all")
    first = {name: ready(app, name, 0) for name in ("proc-1", "proc-2", "proc-3", "other")}
    os.kill(first["proc-3"], signal.SIGKILL)
    for name in ("proc-1", "proc-2", "proc-3", "other"):
        ready(app, name, 1)
    app.expect(r"worker 'proc-3' .*restarting it .* with 'proc-1', 'proc-2', 'other' \(one_for_all\)", stream="stderr")
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr


@pytest.mark.parametrize("strategy", ["one_for_one", "one_for_all"])
def test_a_scale_down_is_not_a_failure_and_restarts_nothing(spoc_app: Callable[..., App], strategy: str) -> None:
    """Under policy="always", a replica a scale-down stopped is not restarted, nor are its siblings stopped."""
    app = start(spoc_app, STRATEGY=strategy, SCALE_DOWN="1")
    for name in ("proc-1", "proc-2", "proc-3", "other"):
        ready(app, name, 0)
    app.expect("SCALED")
    app.expect(r"worker 'proc-3' ended \(stopped\)", stream="stderr")
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "restarts=1" not in app.stdout
    assert "restarting it" not in app.stderr and "proc-3 replica=3 pid" in app.stdout
    assert "server 'replicated' stopped (SIGTERM): 3 workers ended cleanly" in app.stderr, app.stderr
