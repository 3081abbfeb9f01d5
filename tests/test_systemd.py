"""systemd's notify protocol (issue 32, point 1): what a ``spoc run`` service sends to a real datagram socket the
test binds, as systemd would (by path and by abstract name)."""

from __future__ import annotations

import itertools
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import APPS, App

pytestmark = [pytest.mark.signals, pytest.mark.timeout(60)]

APP = APPS / "notified.py"


class Systemd:
    """A datagram socket bound as systemd binds NOTIFY_SOCKET; each message kept with the time it came."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind("\0" + address[1:] if address.startswith("@") else address)
        self.messages: list[tuple[float, str]] = []
        self.changed = threading.Condition()
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        self.socket.settimeout(0.1)
        while not self.closed:
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self.changed:
                self.messages.append((time.monotonic(), data.decode()))
                self.changed.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout: float = 20.0) -> float:
        """When the `count`-th message holding the line `text` came."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = [when for when, message in self.messages if text in message.split("\n")]
                if len(found) >= count:
                    return found[count - 1]
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no {count}x {text!r} within {timeout}s; got {self.texts()}"
                self.changed.wait(remaining)

    def texts(self) -> list[str]:
        with self.changed:
            return [message for _, message in self.messages]

    def lines(self) -> list[str]:
        return [line for message in self.texts() for line in message.split("\n")]

    def close(self) -> None:
        self.closed = True
        self.reader.join(5)
        self.socket.close()


@pytest.fixture(params=["path", "abstract"])
def systemd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Systemd]:
    address = str(tmp_path / "notify") if request.param == "path" else f"@spoc-test-{uuid.uuid4().hex}"
    listener = Systemd(address)
    yield listener
    listener.close()


def spoc_run(app_factory: Callable[..., App], systemd: Systemd, *options: str, **env: str) -> App:
    command = [sys.executable, "-m", "spoc", "run", f"{APP}:server", *options]
    return app_factory(command=command, env={"NOTIFY_SOCKET": systemd.address, **env})


def test_ready_after_the_slowest_setup_then_reloading_ready_stopping(
    app_factory: Callable[..., App], systemd: Systemd
) -> None:
    app = spoc_run(app_factory, systemd, SETUP_SECONDS="0.5")
    systemd.wait_for("READY=1")
    app.expect("READY slow")
    lines = systemd.lines()
    assert lines.index("X-SETUP-DONE") < lines.index("READY=1"), lines
    assert "READY=1\nSTATUS=2 workers running" in systemd.texts()
    assert re.search(r"CHILD-ENV - -", app.expect(r"CHILD-ENV")[0].string), "the child inherited NOTIFY_SOCKET"
    app.signal(signal.SIGHUP)
    systemd.wait_for("RELOADING=1")
    systemd.wait_for("READY=1", count=2)
    reloading = next(t for t in systemd.texts() if "RELOADING=1" in t)
    usec = int(re.search(r"MONOTONIC_USEC=(\d+)", reloading).group(1))  # type: ignore[union-attr]
    assert abs(usec / 1e6 - time.monotonic()) < 30  # CLOCK_MONOTONIC, as systemd compares it
    app.expect(r"server 'notified': reload done", stream="stderr")
    app.signal(signal.SIGTERM)
    systemd.wait_for("STOPPING=1")
    assert app.wait() == 0, app.stderr
    lines = systemd.lines()
    order = [line for line in lines if line in ("READY=1", "RELOADING=1", "STOPPING=1")]
    assert order == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"], lines
    assert "could not notify" not in app.stderr


def test_a_long_shutdown_extends_systemds_stop_timeout(app_factory: Callable[..., App], systemd: Systemd) -> None:
    app = spoc_run(app_factory, systemd, "--shutdown-timeout", "10", TEARDOWN_SECONDS="2.5")
    systemd.wait_for("READY=1")
    app.signal(signal.SIGTERM)
    stopping = systemd.wait_for("STOPPING=1")
    assert app.wait() == 0, app.stderr
    extensions = [
        (when, int(line.split("=")[1]))
        for when, message in systemd.messages
        for line in message.split("\n")
        if line.startswith("EXTEND_TIMEOUT_USEC=")
    ]
    assert len(extensions) >= 3, systemd.texts()  # at the stop, then every second of the 2.5 s teardown
    assert extensions[0][0] == stopping and all(usec >= 2_000_000 for _, usec in extensions)


def test_watchdog_pings_at_half_the_interval_and_stop_while_the_monitor_is_held(
    app_factory: Callable[..., App], systemd: Systemd
) -> None:
    app = spoc_run(app_factory, systemd, WATCHDOG_USEC="400000", BLOCK="1")
    blocked = systemd.wait_for("X-BLOCK")
    unblocked = systemd.wait_for("X-UNBLOCKED")
    systemd.wait_for("WATCHDOG=1", count=len(_pings(systemd)) + 3)  # pings again after the hold
    pings = _pings(systemd)
    held = [when for when in pings if blocked + 0.3 < when < unblocked - 0.05]
    assert held == [], "the watchdog pinged while the monitor thread was held"
    free = [b - a for a, b in itertools.pairwise(pings) if a > unblocked]
    assert 0.1 <= statistics.median(free) <= 0.4, free  # every 0.2 s (WATCHDOG_USEC / 2)
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "CHILD-ENV - -" in app.stdout  # WATCHDOG_USEC is not inherited either


def _pings(systemd: Systemd) -> list[float]:
    with systemd.changed:
        return [when for when, message in systemd.messages if "WATCHDOG=1" in message.split("\n")]


def test_a_watchdog_pid_of_another_process_sends_no_ping(app_factory: Callable[..., App], systemd: Systemd) -> None:
    app = spoc_run(app_factory, systemd, WATCHDOG_USEC="200000", WATCHDOG_PID="1")
    systemd.wait_for("READY=1")
    app.expect("READY slow")
    app.signal(signal.SIGTERM)
    systemd.wait_for("STOPPING=1")
    assert app.wait() == 0
    assert "WATCHDOG=1" not in systemd.lines()


def test_a_plain_start_sends_nothing_until_asked(app_factory: Callable[..., App], systemd: Systemd) -> None:
    app = app_factory(command=[sys.executable, str(APP)], env={"NOTIFY_SOCKET": systemd.address})
    systemd.wait_for("X-PLAIN-DONE")
    assert app.wait() == 0, app.stderr
    assert systemd.lines() == ["X-SETUP-DONE", "X-PLAIN-DONE"]


def test_a_socket_that_refuses_is_said_once_and_hurts_nothing(app_factory: Callable[..., App], tmp_path: Path) -> None:
    command = [sys.executable, "-m", "spoc", "run", f"{APP}:server"]
    app = app_factory(command=command, env={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens"), "SETUP_SECONDS": "0"})
    app.expect("READY slow")
    app.signal(signal.SIGHUP)
    app.expect(r"reload done", stream="stderr")
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert app.stderr.count("could not notify systemd at") == 1, app.stderr


def test_without_notify_socket_nothing_is_tried(app_factory: Callable[..., App]) -> None:
    app = app_factory(command=[sys.executable, "-m", "spoc", "run", f"{APP}:server"], env={"SETUP_SECONDS": "0"})
    app.expect("READY slow")
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "systemd" not in app.stderr


def _user_systemd() -> str | None:
    """Why no transient user unit can run here, or None."""
    if shutil.which("systemd-run") is None:
        return "systemd-run is not installed"
    probe = subprocess.run(["systemctl", "--user", "is-system-running"], capture_output=True, text=True, check=False)
    if probe.returncode != 0 and probe.stdout.strip() not in ("running", "degraded"):
        return f"no user systemd manager here ({(probe.stdout or probe.stderr).strip() or probe.returncode})"
    return None


@pytest.mark.skipif(_user_systemd() is not None, reason=f"a real Type=notify unit: {_user_systemd()}")
def test_a_real_type_notify_unit_becomes_active(tmp_path: Path) -> None:
    unit = f"spoc-test-{uuid.uuid4().hex[:8]}"
    started = subprocess.run(
        [
            "systemd-run",
            "--user",
            f"--unit={unit}",
            "--property=Type=notify",
            "--property=NotifyAccess=main",
            "--setenv=SETUP_SECONDS=0",
            "--",
            sys.executable,
            "-m",
            "spoc",
            "run",
            f"{APP}:server",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    try:
        assert started.returncode == 0, started.stderr  # systemd-run waits for READY=1 with Type=notify
        state = subprocess.run(
            ["systemctl", "--user", "show", unit, "--property=ActiveState,StatusText"], capture_output=True, text=True
        )
        assert "ActiveState=active" in state.stdout and "StatusText=2 workers running" in state.stdout, state.stdout
    finally:
        subprocess.run(["systemctl", "--user", "stop", unit], check=False, timeout=30)
