"""Shared fixtures: every test gets a control socket folder of its own (``XDG_RUNTIME_DIR``), inherited by
the servers and the ``spoc ctl`` commands it runs, and may leave no process or thread behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spoc.testing import App

APPS = Path(__file__).resolve().parent / "apps"


@pytest.fixture(autouse=True)
def _no_leftovers(spoc_no_leftovers: None) -> None:
    """No test may leave a process or a thread running (spoc.testing's check)."""


@pytest.fixture(autouse=True)
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ``$XDG_RUNTIME_DIR`` (short: a socket's path has at most 107 bytes); its ``spoc`` folder holds
    the sockets."""
    folder = Path(tempfile.mkdtemp(prefix="ctl-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    monkeypatch.delenv("SPOC_CONTROL", raising=False)
    monkeypatch.delenv("SPOC_CONTROL_SOCKET", raising=False)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def shop(spoc_app: Callable[..., App], runtime: Path) -> Callable[..., App]:
    """Start ``spoc run shop:server`` (tests/apps/shop.py) in its own session, once it answers on its socket."""

    def start(name: str = "shop", **env: str) -> App:
        app = spoc_app(command=["spoc", "run", "shop:server"], cwd=APPS, env={"SHOP_NAME": name, **env})
        app.expect(rf"control: server '{name}' answers spoc ctl on ", stream="stderr")
        app.expect(r"worker 'poller-2' started", stream="stderr")
        return app

    return start


def ctl(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``spoc ctl ARGS`` (60 s at most); with `check`, fail the test when it does not exit 0."""
    done = subprocess.run(
        ["spoc", "ctl", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )
    if check and done.returncode != 0:
        raise AssertionError(f"spoc ctl {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def status(*args: str) -> dict[str, dict[str, Any]]:
    """``spoc ctl status --json``: each worker's status, by name."""
    reply = json.loads(ctl(*args, "status", "--json").stdout)
    return {worker["name"]: worker for worker in reply["workers"]}


PYTHON_FOR_OTHERS = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
"""An interpreter another uid may run (this one may sit under /root)."""
