"""The plugin is installed and discovered: every server gets it, a given Logging replaces it, `spoc plugins` lists it"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from spoc import Server
from spoc_logging import Logging


def test_the_plugin_is_installed_and_discovered() -> None:
    (info,) = [p for p in Server().plugins if p.name == "logging"]
    assert (info.source, info.distribution) == ("entry point", "spoc-plugin-logging")
    assert info.hooks == ()  # not asked (no SPOC_LOG_FORMAT in this process): no hook, so no cost either
    asked = subprocess.run(
        [sys.executable, "-m", "spoc", "plugins"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SPOC_LOG_FORMAT": "json"},
    )
    (line,) = [line for line in asked.stdout.splitlines() if line.startswith("logging ")]
    assert "spoc-plugin-logging" in line
    assert {"worker_stdio", "child_starting", "child_event", "worker_exited"} <= set(line.split(None, 3)[3].split(", "))


def test_a_given_logging_object_replaces_the_installed_one() -> None:
    server = Server(plugins=[Logging(format="logfmt")])
    assert [(p.name, p.source) for p in server.plugins if p.name == "logging"] == [("logging", "explicit")]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"format": "xml"}, "Logging(format=...) is 'xml': use one of json, console, logfmt"),
        ({"tail_lines": -1}, "Logging: tail_lines=-1 must be a whole number >= 0"),
        ({"max_line": 10}, "Logging: max_line=10 must be a whole number >= 1024"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        Logging(**arguments)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_under_nox_the_installed_package_is_what_is_tested() -> None:
    if os.environ.get("SPOC_TEST_INSTALLED_PLUGIN") != "spoc-plugin-logging":
        pytest.skip("run by nox (SPOC_TEST_INSTALLED_PLUGIN), against the installed plugin")
    import spoc_logging

    assert "site-packages" in spoc_logging.__file__
