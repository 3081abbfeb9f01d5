"""The plugin is installed and discovered: every server gets it, a given Metrics replaces it, `spoc plugins` lists it"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from metrics_workers import CountsThread
from scraping import scrape
from spoc import Server
from spoc.testing import HookRecorder, ServerFactory
from spoc_metrics import Metrics, plugin


def test_the_plugin_is_installed_and_discovered() -> None:
    (info,) = [p for p in Server().plugins if p.name == "metrics"]
    assert (info.source, info.distribution) == ("entry point", "spoc-plugin-metrics")
    assert {"worker_exited", "child_starting", "child_stopping"} <= set(info.hooks)
    listing = subprocess.run([sys.executable, "-m", "spoc", "plugins"], capture_output=True, text=True, timeout=60)
    assert "metrics" in listing.stdout and "spoc-plugin-metrics" in listing.stdout


def test_the_installed_plugin_serves_a_server_without_options(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    spoc_server(CountsThread("thread", jobs=4)).start()  # SPOC_METRICS_PORT=0 (conftest): a free port
    spoc_hooks.wait_for("worker_record", worker="thread", topic="test.counted")
    assert scrape(plugin).value("test_jobs_processed_total", worker="thread", queue="default") == 4


def test_a_given_metrics_object_replaces_the_installed_one() -> None:
    given = Metrics(port=0)
    server = Server(plugins=[given])
    assert [(p.name, p.source) for p in server.plugins if p.name == "metrics"] == [("metrics", "explicit")]


def test_under_nox_the_installed_package_is_what_is_tested() -> None:
    import spoc_metrics

    if os.environ.get("SPOC_TEST_INSTALLED_PLUGIN") != "spoc-plugin-metrics":
        pytest.skip("run by `nox -s plugins`, which installs the plugin as pip does (not editable)")
    assert "site-packages" in spoc_metrics.__file__
