"""The endpoint's address and port (options, environment, a free port, a port in use); signals, under `spoc run`."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from metrics_workers import CountsThread, WaitsForKill
from scraping import scrape
from spoc import Server
from spoc.testing import App, HookRecorder, ServerFactory, children_of_this_process
from spoc_metrics import Metrics

APP = Path(__file__).parent / "apps" / "metrics_app.py"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def spoc_run(spoc_app: type[App], *args: str, env: dict[str, str] | None = None) -> App:
    return spoc_app(command=[sys.executable, "-m", "spoc", "run", f"{APP}:server", *args], env=env, cwd=APP.parent)


def test_a_port_in_use_fails_the_start_naming_the_port(busy_port: int) -> None:
    server = Server("busy", plugins=[Metrics(port=busy_port, addr="127.0.0.1")])
    server.add_worker(CountsThread("never"))
    outcome = server.run_forever(shutdown_timeout=10)
    assert not outcome.ok and outcome.exit_code == 1
    assert outcome.failure == (
        f"metrics: cannot serve metrics on 127.0.0.1:{busy_port}: port {busy_port} is already in use; stop what "
        f"holds it, or choose another port with Metrics(port=...) or SPOC_METRICS_PORT (0 picks a free one)"
    )
    assert outcome.exits == () and not server.workers[0].started  # no worker ran


def test_a_port_in_use_from_the_environment_fails_spoc_run(spoc_app: type[App], busy_port: int) -> None:
    program = spoc_run(spoc_app, env={"SPOC_METRICS_PORT": str(busy_port)})
    assert program.wait() == 1
    assert f"port {busy_port} is already in use" in program.stderr
    assert "READY" not in program.stdout


@pytest.mark.parametrize(
    ("variable", "value", "exit_code", "message"),
    [
        # A value that is no port is the configuration's fault (2: a service manager does not restart on it) ...
        ("SPOC_METRICS_PORT", "http", 2, "SPOC_METRICS_PORT must be a port number from 0 to 65535, got 'http'"),
        ("SPOC_METRICS_PORT", "70000", 2, "SPOC_METRICS_PORT must be a port number from 0 to 65535 (0 picks"),
        # ... a name that does not resolve is found at the bind, and may resolve a minute later.
        ("SPOC_METRICS_ADDR", "no-such-host.invalid", 1, "unknown address 'no-such-host.invalid'"),
    ],
)
def test_a_bad_environment_value_fails_the_start_naming_it(
    spoc_app: type[App], variable: str, value: str, exit_code: int, message: str
) -> None:
    program = spoc_run(spoc_app, env={variable: value})
    assert program.wait() == exit_code
    assert message in program.stderr
    assert "READY" not in program.stdout and "Traceback" not in program.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"port": "9464"}, "Metrics(port=...) must be an int port number from 0 to 65535, got '9464'"),
        ({"port": -1}, "Metrics(port=...) must be a port number from 0 to 65535 (0 picks a free one), got -1"),
        ({"addr": ""}, "Metrics(addr=...) must be a host name or IP address"),
        ({"flush_interval": 0}, "Metrics: flush_interval=0 must be a number of seconds > 0"),
    ],
)
def test_bad_options_are_refused_at_once(options: dict[str, object], message: str) -> None:
    with pytest.raises((TypeError, ValueError)) as refused:
        Metrics(**options)  # type: ignore[arg-type]
    assert message in str(refused.value)


def test_port_zero_picks_a_free_port_that_is_logged_and_readable(
    spoc_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="spoc.metrics")
    metrics = Metrics(port=0, addr="127.0.0.1")
    spoc_server(CountsThread("thread"), plugins=[metrics]).start()
    assert metrics.address is not None
    host, port = metrics.address
    assert host == "127.0.0.1" and port > 0
    assert metrics.url == f"http://127.0.0.1:{port}/metrics"
    assert f"metrics: serving http://127.0.0.1:{port}/metrics for server 'test'" in caplog.text
    assert scrape(metrics.url).value("spoc_worker_up", worker="thread") is not None


def test_the_installed_plugin_serves_spoc_run_and_counts_its_signal(spoc_app: type[App], tmp_path: Path) -> None:
    """From the environment's address; a SIGTERM is counted, scraped while a teardown still runs."""
    release = tmp_path / "release"
    program = spoc_run(spoc_app, env={"RELEASE_FILE": str(release)})
    url = program.expect(r"metrics: serving (http://127\.0\.0\.1:\d+/metrics)", stream="stderr")[0].group(1)
    program.expect("READY lingers")
    program.expect("COUNTED consumer")
    assert scrape(url).value("spoc_server_signals_received_total", signal="SIGTERM") == 0
    program.signal(signal.SIGTERM)
    program.expect("TEARDOWN-WAITING")
    program.expect(r"worker 'consumer' ended \(stopped\)", stream="stderr")  # its last batch came before
    during_shutdown = scrape(url)
    assert during_shutdown.value("spoc_server_signals_received_total", signal="SIGTERM") == 1
    assert during_shutdown.value("spoc_server_signals_received_total", signal="SIGINT") == 0
    assert during_shutdown.value("app_jobs_processed_total", worker="consumer") == 5
    release.touch()
    assert program.wait() == 0
    assert "metrics: stopped serving for server 'metrics-app'" in program.stderr


def sockets_of(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def test_no_child_holds_the_endpoints_socket(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str
) -> None:
    """Forked while the socket is open (the fork server, fork workers), children close their copy: the port is
    the server's alone, and freed when it stops."""
    metrics = Metrics(port=0, addr="127.0.0.1")
    worker = WaitsForKill("child", start_method=spoc_start_method)
    spoc_server(worker, plugins=[metrics]).start()
    spoc_hooks.wait_for("worker_record", worker="child", topic="test.counted")
    assert worker.pid is not None
    ours = sockets_of(os.getpid())
    helpers = [pid for pid in children_of_this_process() if pid != worker.pid]
    for pid in [worker.pid, *helpers]:
        assert not sockets_of(pid) & ours, f"process {pid} shares a socket with the server"
