"""No child is ever forked from a program that runs threads, on any path (issue 15, point 6).

A thread of the program holds a module-level lock nearly all the time
(tests/apps/held_lock.py); five process workers start while it does. A fork
made then would copy the lock held, forever: every child must find it free.
Where no clean snapshot exists, the worker is spawned, with one warning each
that says why.
"""

from __future__ import annotations

import re

import pytest

from harness import APPS, App

pytestmark = pytest.mark.timeout(120)

SPAWNED = r"SpocWarning: worker '([^']+)' \(start_method='fork'\) is started with 'spawn' instead: (.+?)\. Forking"


NO_FORK_SERVER = (
    "server 'held-lock' forked no fork server at start: no worker needed one then, "
    "and none could start later (it had no plugin, and was not run by run_forever())"
)
THREADS_FIRST = (
    "the program already ran thread 'user-holder' when server 'held-lock' started, so it could fork no fork server"
)


@pytest.mark.parametrize(
    ("path", "runs", "why"),
    [
        ("standalone", [f"checker-{i} free run=0" for i in range(5)], "the program runs thread 'holder'"),
        ("added_later", [f"checker-{i} free run=0" for i in range(5)], NO_FORK_SERVER),
        ("threads_first", [f"checker-{i} free run=0" for i in range(5)], THREADS_FIRST),
        ("added_later_with_plugin", [f"checker-{i} free run=0" for i in range(5)], None),
        ("restart", [f"checker free run={run}" for run in range(5)], None),
        ("restart_threads_first", [f"checker free run={run}" for run in range(5)], THREADS_FIRST),
    ],
)
def test_no_child_inherits_a_lock_another_thread_held(
    app_factory: type[App], path: str, runs: list[str], why: str | None
) -> None:
    app = app_factory(path, script=APPS / "held_lock.py")
    assert app.wait(90) == 0, app.stderr
    assert "HELD" not in app.stdout
    assert sorted(re.findall(r"LOCK (.+)", app.stdout)) == sorted(runs)
    warned = re.findall(SPAWNED, app.stderr)
    if why is None:  # from the fork server, forked before any thread ran
        assert warned == []
    elif path == "restart_threads_first":  # one warning for its first run and its restarts
        assert warned == [("checker", why)]
    else:
        assert warned == [(f"checker-{i}", why) for i in range(5)]  # one each, naming it and why
