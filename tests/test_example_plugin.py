"""The packaged example plugin (examples/plugin) is installed with pip, discovered, and does its job."""

from __future__ import annotations

import json
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
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--target", str(target), str(source)],
        check=True,
        timeout=240,
    )
    return {"PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def test_the_plugin_is_installed_and_discovered(site: dict[str, str]) -> None:
    command = [sys.executable, "-m", "spoc", "plugins"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env={**os.environ, **site})
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


def spoc_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed console script `spoc` (next to this interpreter)."""
    script = Path(sys.executable).with_name("spoc")
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env})


def test_spoc_plugins_as_json_and_with_the_builtin_ones(site: dict[str, str]) -> None:
    listed = json.loads(spoc_command("plugins", "--json", "--all", env=site).stdout)
    assert [(p["name"], p["source"], p["distribution"]) for p in listed] == [
        ("spoc.backends", "builtin", "spoc-core"),
        ("summary", "entry point", "spoc-plugin-summary"),
    ]
    assert listed[1]["hooks"] == ["server_stopped", "worker_event", "worker_record", "worker_started"]


def test_spoc_plugins_with_autoload_off_or_a_broken_plugin(site: dict[str, str], tmp_path: Path) -> None:
    quiet = spoc_command("plugins", env={**site, "SPOC_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert quiet.returncode == 0 and quiet.stdout.startswith("No spoc plugins installed")
    info = tmp_path / "spoc_plugin_broken-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: spoc-plugin-broken\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[spoc]\nbroken = spoc_no_such_module\n")
    broken = spoc_command("plugins", env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{site['PYTHONPATH']}"})
    assert broken.returncode == 1
    assert "'broken'" in broken.stderr and "spoc-plugin-broken 0.3" in broken.stderr
    assert "ModuleNotFoundError" in broken.stderr
