"""The packaged example plugin (examples/plugin) is installed with pip, discovered, and does its job."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ROOT, App

EXAMPLE = ROOT / "examples" / "plugin"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The plugin installed by pip into a fresh directory (from a copy: pip's build would litter the checkout)."""
    source = tmp_path_factory.mktemp("source") / "plugin"
    shutil.copytree(EXAMPLE, source)
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--target", str(target), str(source)],
        check=True,
        timeout=240,
    )
    return {"PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def test_the_plugin_is_installed_and_discovered(site: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "spoc", "plugins"], capture_output=True, text=True, timeout=60, env={**os.environ, **site}
    )
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "DISTRIBUTION", "VERSION", "HOOKS"]
    assert row.split(maxsplit=3) == [
        "summary",
        "spoc-plugin-summary",
        "0.1.0",
        "server_stopped, worker_event, worker_record, worker_started",
    ]


def test_the_demo_counts_jobs_sent_from_a_thread_and_from_a_child_process(
    site: dict[str, str], app_factory: type[App]
) -> None:
    app = app_factory(script=EXAMPLE / "demo.py", env=site)
    assert app.wait(60) == 0, app.stderr
    lines = [line.split() for line in app.stderr.splitlines() if line.startswith("summary:")]
    assert sorted((line[1], line[2], line[-2]) for line in lines) == [
        ("processy", "stopped", "3"),  # it stopped itself in its child: the server knows
        ("thready", "stopped", "3"),
    ]
    assert "installed plugins: summary" in app.stdout


def test_a_blocked_plugin_is_not_loaded(site: dict[str, str], app_factory: type[App]) -> None:
    app = app_factory(script=EXAMPLE / "demo.py", env={**site, "SPOC_DISABLE_PLUGINS": "summary"})
    assert app.wait(60) == 0, app.stderr
    assert "summary:" not in app.stderr
    assert app.stdout.rstrip().endswith("installed plugins:")
