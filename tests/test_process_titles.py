"""`ps` tells a server's processes apart (issue 15, point 7).

Each child is titled ``spoc: <server>/<worker>`` and the fork server
``spoc: <server> fork server``: the whole command line with setproctitle
(``spoc-core[proctitle]``, which the test extra installs), the 15-byte process
name (``ps -o comm``) otherwise.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from harness import App, ready_pids
from spoc.testing import children_of_this_process

pytestmark = [pytest.mark.signals, pytest.mark.timeout(90)]


def cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode().strip()


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


def test_setproctitle_titles_every_child_and_the_fork_server(app_factory: type[App], spoc_start_method: str) -> None:
    pytest.importorskip("setproctitle")
    app = app_factory("own_handlers", "--method", spoc_start_method, "--add-later", "own")  # own: from the fork server
    pids = ready_pids(app, 2)
    assert cmdline(pids["own"]) == "spoc: faults-own_handlers/own"
    assert cmdline(pids["process-1"]) == "spoc: faults-own_handlers/process-1"
    fork_servers = [pid for pid in children(app.pid) if cmdline(pid) == "spoc: faults-own_handlers fork server"]
    assert len(fork_servers) == 1
    assert comm(pids["process-1"]) == "spoc: faults-ow"  # the kernel keeps 15 bytes of the name
    app.signal(signal.SIGTERM)
    assert app.wait() == 0


def test_the_deployment_recipe_lists_every_worker_of_a_server(app_factory: type[App]) -> None:
    """docs/deployment.md's `ps` line, run as written: the fork server's children too (issue 35, point 6)."""
    pytest.importorskip("setproctitle")
    page = (Path(__file__).parent.parent / "docs" / "deployment.md").read_text()
    recipe = re.search(r"^\$ (ps -o pid,ppid,args --ppid .*)$", page, re.MULTILINE)
    assert recipe is not None, "docs/deployment.md lost its ps recipe"
    app = app_factory("own_handlers", "--method", "fork", "--add-later", "own")  # own: from the fork server
    pids = ready_pids(app, 2)
    listed = subprocess.run(
        ["bash", "-c", recipe.group(1)], env={**os.environ, "server": str(app.pid)}, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert f"{pids['own']} " in listed.stdout and "spoc: faults-own_handlers/own" in listed.stdout
    assert "spoc: faults-own_handlers/process-1" in listed.stdout
    assert "spoc: faults-own_handlers fork server" in listed.stdout
    app.signal(signal.SIGTERM)
    assert app.wait() == 0


def test_without_setproctitle_the_process_name_is_set(app_factory: type[App], tmp_path: Path) -> None:
    (tmp_path / "setproctitle.py").write_text('raise ImportError("hidden by the test")\n')
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    app = app_factory("basic", env=env)
    pids = ready_pids(app, 3)
    assert comm(pids["process-1"]) == "spoc: faults-ba"
    assert "faults.py basic" in cmdline(pids["process-1"])  # the command line is left as it was
    app.signal(signal.SIGTERM)
    assert app.wait() == 0
    assert children_of_this_process().get(app.pid) is None
