"""A server whose fork server dies goes on starting, restarting and reloading its workers (issue 37, point 1).

Real ``spoc run`` processes in their own sessions (with every plugin installed
in the ``together`` session): the fork server is SIGKILLed as the OOM killer
or an operator would, then the workers are killed, reloaded and stopped.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from spoc.testing import App, children

APP = Path(__file__).resolve().parents[3] / "tests" / "apps" / "fork_server_death.py"  # the core's tests use it too

pytestmark = pytest.mark.timeout(90)


def readies(app: App, count: int) -> list[int]:
    """The pids of the first `count` runs of ``orders-1``, each of which found the program's lock free."""
    matches = app.expect(r"READY orders-1 pid=(\d+) lock=(\w+)", count=count, timeout=20)
    assert [m.group(2) for m in matches] == ["free"] * count, app.stdout
    return [int(m.group(1)) for m in matches]


def run(spoc_app: Any, target: str) -> Any:
    return spoc_app(command=[sys.executable, "-m", "spoc", "run", f"{APP}:{target}"], cwd=APP.parent)


def test_a_dead_fork_server_is_reaped_logged_and_replaced_and_every_worker_comes_back(spoc_app: Any) -> None:
    app = run(spoc_app, "server")
    (first,) = readies(app, 1)
    (old,) = children(app.pid) - {first}  # its fork server: its one child that is no worker
    os.kill(old, signal.SIGKILL)
    (died,) = app.expect(
        rf"server 'fork-death': its fork server \(pid {old}\) died \(killed by SIGKILL\); started a new one "
        r"\(pid (\d+)\) with 'spawn'",
        stream="stderr",
    )
    new = int(died.group(1))
    assert not os.path.exists(f"/proc/{old}"), "the dead fork server was not reaped"
    assert children(app.pid) == {first, new}

    os.kill(first, signal.SIGKILL)  # restarted within a few seconds, by the new fork server
    second = readies(app, 2)[1]
    assert second in children(new) and first not in children(new)  # beside it, maybe, the fork server's standby

    app.signal(signal.SIGHUP)  # every worker back
    app.expect(r"server 'fork-death': reload done", stream="stderr")
    app.expect(r"starting worker 'holder' afresh \(reload\)", stream="stderr")
    third = readies(app, 3)[2]
    assert third not in (first, second)

    os.kill(new, signal.SIGKILL)  # its child, whose end it alone could report, is ended and restarted
    app.expect(
        r"worker 'orders-1' ended from outside its body: its fork server died, and with it the only way to learn "
        r"how the child ends: the server sent it SIGKILL",
        stream="stderr",
    )
    fourth = readies(app, 4)[3]
    app.expect(r"worker 'orders-1' was killed by SIGKILL: restarting it|ended from outside", stream="stderr")
    assert fourth != third

    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "could not be restarted" not in app.stderr
    assert re.search(r"server 'fork-death' stopped \(SIGTERM\): 2 workers ended cleanly", app.stderr), app.stderr


def test_a_worker_that_cannot_be_started_at_all_is_a_failure_the_supervisor_gives_up_on(spoc_app: Any) -> None:
    """Its restarts can come only from a fork server that holds it: once that died, each attempt fails, is
    counted as a failure in setup, and the supervisor gives up under its rules (exit 1), never silently."""
    app = run(spoc_app, "unpicklable")
    (first,) = readies(app, 1)
    (fork_server,) = children(app.pid) - {first}
    os.kill(fork_server, signal.SIGKILL)
    app.expect(r"its fork server \(pid \d+\) died", stream="stderr")
    os.kill(first, signal.SIGKILL)
    assert app.wait() == 1, app.stderr
    assert re.search(
        r"worker 'orders-1' failed in setup: Unpicklable 'orders-1' cannot be sent to its child process", app.stderr
    )
    assert re.search(r"server 'fork-death' gives up: worker 'orders-1' has (never started|failed at every)", app.stderr)
