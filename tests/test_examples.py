"""Every example runs, with a bounded runtime, and behaves as its docstring says."""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

import pytest

from harness import ROOT, App

pytestmark = pytest.mark.timeout(90)
EXAMPLES = ROOT / "examples"


def test_examples_are_all_covered() -> None:
    covered = {
        "demo",
        "workers",
        "job_processor",
        "periodic_task",
        "pipeline",
        "graceful_shutdown",
        "service",
        "replicas",
    }
    needs_a_plugin = {"metrics_demo", "redis_jobs", "structured_logs", "ray_workers"}  # run by their plugin's tests
    assert {p.stem for p in EXAMPLES.glob("*.py")} == covered | needs_a_plugin


def test_demo_shuts_down_gracefully_on_its_simulated_ctrl_c(app_factory: type[App]) -> None:
    app = app_factory("--seconds", "1.5", script=EXAMPLES / "demo.py")
    assert app.wait(60) == 0
    assert "Shutdown clean (reason: signal, signal: SIGINT)" in app.stdout
    for name in ("poller", "ticker", "cruncher-1", "cruncher-2"):
        assert f"{name:<11} stopped" in app.stdout
    assert "teardown" in app.stdout


def test_workers_tour(app_factory: type[App]) -> None:
    app = app_factory("--seconds", "2.5", script=EXAMPLES / "workers.py")
    assert app.wait(60) == 0
    assert "hasher: hashed 3 files" in app.stdout
    assert app.stderr.count("worker 'flaky' failed in main: upstream refused the connection") == 1
    assert "same loop=True" in app.stdout


def test_replicas_scale_up_down_to_zero_and_back(app_factory: type[App]) -> None:
    app = app_factory(script=EXAMPLES / "replicas.py")
    assert app.wait(60) == 0, app.stderr
    said = [line for line in app.stdout.splitlines() if line.startswith("operator:")]
    assert said == [
        "operator: cruncher runs 4 replica(s): cruncher-1, cruncher-2, cruncher-3, cruncher-4",
        "operator: cruncher runs 1 replica(s): cruncher-1",
        "operator: cruncher runs 0 replica(s): none",
        "operator: cruncher runs 2 replica(s): cruncher-1, cruncher-2",
    ], app.stdout
    to_one = app.stdout.split(said[0])[1].split(said[1])[0]  # each teardown ran before the count was reached
    assert all(f"cruncher-{n}: stopped after" in to_one for n in (2, 3, 4)) and "cruncher-1: stopped" not in to_one
    assert app.stdout.count("cruncher-1: stopped after") == 2 and "crunchers: stop, exit code 0" in app.stdout


def test_replicas_under_spoc_run_take_the_scale_option(app_factory: type[App]) -> None:
    app = app_factory(
        command=[sys.executable, "-m", "spoc", "run", f"{EXAMPLES / 'replicas.py'}:server", "--scale", "cruncher=3"]
    )
    app.expect(r"cruncher-3: replica 3 started")
    app.signal(signal.SIGTERM)
    assert app.wait(30) == 0, app.stderr
    assert "cruncher-4" not in app.stdout and app.stdout.count("stopped after") == 3


def test_job_processor_ends_when_the_jobs_are_done(app_factory: type[App]) -> None:
    app = app_factory(script=EXAMPLES / "job_processor.py")
    assert app.wait(60) == 0
    assert sum(f"processed Job-{i}" in app.stdout for i in range(10)) == 10
    assert "all jobs done; every worker stopped" in app.stdout


def test_periodic_task_stops_mid_interval(app_factory: type[App]) -> None:
    app = app_factory("--interval", "60", script=EXAMPLES / "periodic_task.py")
    app.expect("DataSync: task executed")
    app.signal(signal.SIGINT)
    assert app.wait(10) == 0
    assert "DataSync: stopped" in app.stdout


def test_pipeline_crosses_the_process_boundary_and_ends_by_itself(app_factory: type[App]) -> None:
    app = app_factory("--items", "10", script=EXAMPLES / "pipeline.py")
    assert app.wait(60) == 0
    assert app.stdout.count("Saved: ") == 10
    assert "'transformed': True" in app.stdout
    assert "pipeline finished: workers_ended" in app.stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_graceful_shutdown_saves_state(app_factory: type[App], tmp_path: Path, signum: int) -> None:
    app = app_factory("--state-dir", str(tmp_path), script=EXAMPLES / "graceful_shutdown.py")
    app.expect("process-counter: resuming at 0")
    app.expect("thread-counter: resuming at 0")
    app.signal_group(signum)
    assert app.wait(30) == 0
    for name in ("thread-counter", "process-counter"):
        assert json.loads((tmp_path / f"{name}.json").read_text())["done"] >= 0
    assert "clean=True" in app.stdout


def test_the_service_runs_under_spoc_run_and_stops_cleanly_on_sigterm(app_factory: type[App]) -> None:
    app = app_factory(command=[sys.executable, "-m", "spoc", "run", "examples/service.py:server"])
    app.expect("heartbeat: beat 1")
    app.expect("hasher: first round done")
    app.signal(signal.SIGTERM)
    assert app.wait(30) == 0, app.stderr
    assert re.search(r"hasher: \d+ rounds, stopping", app.stdout)
    assert "server 'service' stopped (SIGTERM): 2 workers ended cleanly" in app.stderr
