"""Installed and not configured, the plugin never makes a program fail: loopback, and a free port when 9464 is taken."""

from __future__ import annotations

import errno
import signal
import socket
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from spoc.testing import App
from spoc_metrics._settings import DEFAULT_PORT, ListenAddress, listen_address

APP = Path(__file__).parent / "apps" / "metrics_app.py"
UNCONFIGURED = {"SPOC_METRICS_PORT": "", "SPOC_METRICS_ADDR": ""}  # conftest sets both for every other test


@pytest.fixture
def default_port_taken() -> Iterator[None]:
    """Port 9464 on loopback is held for the test (or already was, by something else: the same for the plugin)."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", DEFAULT_PORT))
        holder.listen()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
    try:
        yield
    finally:
        holder.close()


def test_the_default_is_loopback_and_a_port_nobody_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in UNCONFIGURED:
        monkeypatch.delenv(variable, raising=False)
    assert listen_address(None, None) == ListenAddress("127.0.0.1", DEFAULT_PORT, port_chosen=False)
    monkeypatch.setenv("SPOC_METRICS_PORT", "9999")
    assert listen_address(None, None).port_chosen


def test_two_unconfigured_programs_both_run_while_the_default_port_is_taken(
    spoc_app: type[App], default_port_taken: None
) -> None:
    programs = [
        spoc_app(command=[sys.executable, "-m", "spoc", "run", f"{APP}:server"], env=UNCONFIGURED, cwd=APP.parent)
        for _ in range(2)
    ]
    ports = []
    for program in programs:
        (warned,) = program.expect(
            r"the default port 9464 is in use .* serves them on port (\d+) instead", stream="stderr"
        )
        ports.append(int(warned.group(1)))
        program.expect("COUNTED consumer")
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[-1]}/metrics", timeout=10) as response:
            assert b'worker="consumer"' in response.read()  # it serves this program's metrics
    assert len(set(ports)) == 2 and DEFAULT_PORT not in ports
    for program in programs:
        program.signal(signal.SIGTERM)
        assert program.wait() == 0, program.stderr
