"""The plugin is installed and discovered; installed, it costs a program without Ray workers nothing of Ray."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ray_workers import Far
from spoc import BackendError, Server
from spoc_ray import Ray

PROGRAM = r"""
import sys
from spoc import Server, ThreadWorker

class Quick(ThreadWorker):
    def main(self):
        pass

server = Server("no-ray")
server.add_worker(Quick("quick"))
server.start()
assert server.join_all(30) == []
print("ray imported:", "ray" in sys.modules)
"""


def test_the_plugin_is_installed_and_discovered() -> None:
    (info,) = [p for p in Server().plugins if p.name == "ray"]
    assert (info.source, info.distribution) == ("entry point", "spoc-plugin-ray")
    assert set(info.hooks) == {"backend_register", "worker_check"}
    listing = subprocess.run([sys.executable, "-m", "spoc", "plugins"], capture_output=True, text=True, timeout=60)
    assert "ray" in listing.stdout and "spoc-plugin-ray" in listing.stdout


def test_a_program_without_ray_workers_never_imports_ray() -> None:
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ray imported: False" in done.stdout


def test_a_ray_worker_on_a_server_without_the_plugin_names_it() -> None:
    server = Server("blocked", disable_plugins=["ray"])
    server.add_worker(Far("far"))
    with pytest.raises(BackendError) as raised:
        server.start()
    assert "worker 'far' names backend 'ray', which is not registered" in str(raised.value)


def test_a_bad_address_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"Ray\(address=''\): give a cluster address such as 'auto', or None"):
        Ray(address="")


def test_under_nox_the_installed_package_is_what_is_tested() -> None:
    import spoc_ray

    if os.environ.get("SPOC_TEST_INSTALLED_PLUGIN") != "spoc-plugin-ray":
        pytest.skip("run by `nox -s plugins`, which installs the plugin as pip does (not editable)")
    assert "site-packages" in spoc_ray.__file__
