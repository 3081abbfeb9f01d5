"""The user guide's examples run as written, and its promises hold.

tests/guide/ holds the guide's programs copied verbatim (each file names the
guide lines it comes from). A few blocks use a name that an earlier block of
the guide imported; those files start with that import, marked "prelude".
"""

from __future__ import annotations

import runpy
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from harness import APPS, App
from spoc import Server

pytestmark = pytest.mark.timeout(90)
GUIDE = Path(__file__).parent / "guide"


def guide_app(app_factory: Any, name: str) -> App:
    app: App = app_factory(str(GUIDE / name), script=APPS / "run_logged.py")
    return app


def load(name: str) -> dict[str, Any]:
    return runpy.run_path(str(GUIDE / name), run_name="guide_" + name[:-3])


def test_basic_server_usage(app_factory: Any) -> None:
    app = guide_app(app_factory, "basic_server.py")
    app.expect("ThreadWorker-1 working...")
    app.expect("ProcessWorker-1 processing...")
    app.signal_group(signal.SIGINT)
    assert app.wait(30) == 0
    assert "KeyboardInterrupt" not in app.stderr


def test_run_forever_and_signal_handling(app_factory: Any) -> None:
    app = guide_app(app_factory, "graceful_worker.py")
    app.expect("worker 'Worker-1' started", stream="stderr")
    app.signal(signal.SIGTERM)
    assert app.wait(30) == 0
    assert app.expect(r"Processed \d+ items before shutdown")


def test_async_worker_with_uvloop(app_factory: Any) -> None:
    app = guide_app(app_factory, "async_api_worker_uvloop.py")
    assert app.wait(30) == 0
    assert "Traceback" not in app.stderr


def test_run_async_safely(app_factory: Any) -> None:
    app = guide_app(app_factory, "run_async_safely.py")
    assert app.wait(30) == 0


def test_pattern_1_job_processor(app_factory: Any) -> None:
    app = guide_app(app_factory, "job_processor.py")
    assert app.wait(60) == 0
    assert sum(f"processing: Job-{i}" in app.stdout for i in range(10)) == 10


def test_pattern_2_periodic_tasks(app_factory: Any) -> None:
    app = guide_app(app_factory, "periodic_tasks.py")
    app.expect("Syncing data at")
    app.signal_group(signal.SIGINT)
    assert app.wait(30) == 0


def test_pattern_3_pipeline_warns_that_queue_queue_cannot_cross(app_factory: Any) -> None:
    app = guide_app(app_factory, "pipeline.py")
    warning = app.expect(r"ThreadOnlyObjectWarning: TransformStage 'Transform' holds a queue\.Queue", stream="stderr")
    assert warning
    app.expect("worker 'Save' started", stream="stderr")
    app.signal_group(signal.SIGINT)
    assert app.wait(30) == 0
    assert "multiprocessing.Queue()" in app.stderr


def test_log_watcher_and_basic_structure_define_workers() -> None:
    watcher = load("log_watcher.py")["LogWatcher"]("watcher")
    assert watcher.name == "watcher" and not watcher.started


def test_hash_calculator_runs_in_a_server() -> None:
    calculator = load("hash_calculator.py")["HashCalculator"]("hasher")
    server = Server()
    server.add_worker(calculator)
    server.start()
    server.stop()
    assert server.join_all(30) == []
    assert calculator.exitcode == 0


def test_monitored_worker_lifecycle_events(capsys: pytest.CaptureFixture[str]) -> None:
    worker = load("monitored_worker.py")["MonitoredWorker"]("monitored")
    worker.start()
    worker.stop()
    worker.join(10)
    out = capsys.readouterr().out
    assert "monitored is starting up" in out
    assert "monitored ran for" in out
    assert worker.exitcode == 0


def test_health_monitor_sees_a_dead_worker_and_restarts_it(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = load("health_monitor.py")

    class OneShot(namespace["ThreadWorker"]):  # type: ignore[misc]
        runs = 0
        ran = threading.Event()

        def main(self) -> None:
            type(self).runs += 1
            type(self).ran.set()

    dead = OneShot("one-shot")
    dead.start()
    dead.join(10)
    monitor = namespace["HealthMonitor"]("health", [dead])
    OneShot.ran.clear()
    monitor.start()
    assert OneShot.ran.wait(10)
    monitor.stop()
    monitor.join(10)
    for worker in monitor.workers:
        worker.join(10)
    assert OneShot.runs == 2
    assert "Worker one-shot died, restarting..." in capsys.readouterr().out
