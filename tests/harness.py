"""The core repository's test harness, on spoc.testing's kit: its fault app, the repository's paths, and the
markers of its test apps.

Every test of the core is checked for leftover processes and threads (``spoc_no_leftovers``), and starts its
programs with ``app_factory``: ``spoc_app`` with the fault app (tests/apps/faults.py) and the repository as
defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spoc.testing import App, children, log_lines

__all__ = [
    "APPS",
    "ROOT",
    "App",
    "app_factory",
    "children",
    "fork_server",
    "log_lines",
    "no_leftovers",
    "readies",
    "ready_pids",
]

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"


def fork_server(app: App, workers: set[int]) -> int:
    """The pid of `app`'s server's fork server: its one child that runs none of `workers`."""
    (found,) = children(app.pid) - workers
    return found


def readies(app: App, count: int) -> list[int]:
    """The pids of the first `count` runs of ``orders-1`` of tests/apps/fork_server_death.py, each of which
    found the program's lock free (never forked from the threaded server)."""
    matches = app.expect(r"READY orders-1 pid=(\d+) lock=(\w+)", count=count, timeout=20)
    assert [m.group(2) for m in matches] == ["free"] * count, app.stdout
    return [int(m.group(1)) for m in matches]


def ready_pids(app: App, count: int) -> dict[str, int]:
    """Wait for `count` ``READY <name> pid=<pid>`` markers (the fault app's); return name -> pid."""
    return {m.group(1): int(m.group(2)) for m in app.expect(r"READY (\S+) pid=(\d+)", count=count)}


# ---------------------------------------------------------------------- fixtures (conftest.py imports them)


@pytest.fixture(autouse=True)
def no_leftovers(spoc_no_leftovers: None) -> None:
    """Every test of the core fails when it leaves a process or a thread running (spoc.testing's check)."""


@pytest.fixture
def app_factory(spoc_app: Callable[..., App]) -> Callable[..., App]:
    """Start programs with `app_factory(*args, ...)` (`App`'s arguments: the fault app by default); each is killed
    with its group at the end (``spoc_app``)."""

    def make(*args: str, script: Path | str = APPS / "faults.py", cwd: Path | str = ROOT, **kwargs: Any) -> App:
        app: App = spoc_app(*args, script=None if "command" in kwargs else script, cwd=cwd, **kwargs)
        return app

    return make
