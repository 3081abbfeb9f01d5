"""``/healthz``, ``/readyz``, ``/status.json`` and the page's files, from a real ``spoc run`` in its own
session (issue 31, points 2 and 3)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from metrics_workers import CountsThread
from spoc.testing import App, HookRecorder, ServerFactory
from spoc_metrics import Metrics
from status_apps import get, get_json, start_status_app, until

pytestmark = pytest.mark.timeout(120)

WORKERS = ["steady", "child", "jobs", "fails-first", "blocker"]


def test_healthz_is_503_while_the_monitor_is_stuck(spoc_app: Callable[..., App], tmp_path: Path) -> None:
    app, base = start_status_app(spoc_app, tmp_path)
    assert get_json(f"{base}/healthz") == (200, {"healthy": True, "servers": ["status"]})
    (tmp_path / "block").touch()  # a plugin's hook now holds the monitor thread
    _code, body = until(lambda: get_json(f"{base}/healthz"), lambda answer: answer[0] == 503)
    assert body == {
        "healthy": False,
        "stuck": ["status"],
        "why": "the monitor of 'status' did not answer within 1s",
    }
    (tmp_path / "release").touch()
    until(lambda: get_json(f"{base}/healthz"), lambda answer: answer[0] == 200)
    app.signal(signal.SIGTERM)
    assert app.wait() == 0


def test_readyz_waits_for_every_setup(spoc_app: Callable[..., App], tmp_path: Path) -> None:
    _, base = start_status_app(spoc_app, tmp_path, STATUS_GATED="1")
    code, body = get_json(f"{base}/readyz")
    assert code == 503 and body["ready"] is False
    assert {w["worker"]: w["state"] for w in body["not_ready"]}["gated"] == "starting"
    assert [w["why"] for w in body["not_ready"] if w["worker"] == "gated"] == ["its setup() has not returned yet"]
    (tmp_path / "ready").touch()
    code, body = until(lambda: get_json(f"{base}/readyz"), lambda answer: answer[0] == 200)
    assert body == {"ready": True, "servers": ["status"]}


def test_readyz_names_a_worker_in_a_crash_loop(spoc_app: Callable[..., App], tmp_path: Path) -> None:
    _, base = start_status_app(spoc_app, tmp_path, STATUS_CRASHER="1")
    code, body = until(
        lambda: get_json(f"{base}/readyz"),
        lambda answer: any(
            w["worker"] == "crasher" and w["state"] == "waiting to restart" for w in answer[1].get("not_ready", [])
        ),
    )  # before its first failure it is "starting", which is not ready either
    assert code == 503
    (crasher,) = [w for w in body["not_ready"] if w["worker"] == "crasher"]
    assert crasher["state"] == "waiting to restart"
    assert crasher["why"] == "it failed, and its restart waits out its backoff"
    assert crasher["last_exit"] == "failed (exit code 1) in main: RuntimeError: the crasher crashes"


def test_readyz_is_503_once_the_server_shuts_down(spoc_app: Callable[..., App], tmp_path: Path) -> None:
    app, base = start_status_app(spoc_app, tmp_path, STATUS_HOLD_TEARDOWN="1")
    # Its fresh run has started: readyz may say 200 before its first run's planned failure, and a stop then finds it
    app.expect(r"worker 'fails-first' started", stream="stderr", count=2)  # failed (exit code 1)
    until(lambda: get_json(f"{base}/readyz"), lambda answer: answer[0] == 200)
    app.signal(signal.SIGTERM)
    _code, body = until(lambda: get_json(f"{base}/readyz"), lambda answer: answer[0] == 503)
    assert body["shutting_down"] == ["status"]
    (tmp_path / "torn").touch()
    assert app.wait() == 0, app.stderr[-3000:]


def test_status_json_has_every_worker_with_its_jobs_and_errors(spoc_app: Callable[..., App], tmp_path: Path) -> None:
    app, base = start_status_app(spoc_app, tmp_path)
    _, document = until(
        lambda: get_json(f"{base}/status.json"),
        lambda answer: (
            all(w["state"] == "running" for w in answer[1]["servers"][0]["workers"])
            and answer[1]["servers"][0]["workers"][3]["restarts"] == 1
        ),  # fails-first runs before it fails
    )
    (server,) = document["servers"]
    assert (server["server"], server["pid"]) == ("status", app.pid)
    workers = {w["name"]: w for w in server["workers"]}
    assert list(workers) == WORKERS
    assert set(workers["child"]) == {
        "name", "worker", "backend", "state", "pid", "since", "uptime", "restarts", "last_exit", "error", "rss",
        "cpu", "jobs",
    }  # fmt: skip
    assert workers["child"]["backend"] == "process" and workers["child"]["pid"] != app.pid
    assert workers["steady"]["jobs"] is None  # no StreamWorker metrics
    _code, later = until(
        lambda: get_json(f"{base}/status.json"),
        lambda answer: (answer[1]["servers"][0]["workers"][2]["jobs"] or {}).get("failed", 0) > 0,
    )
    jobs = later["servers"][0]["workers"][2]["jobs"]
    assert jobs["done"] > jobs["failed"] > 0
    failed_once = workers["fails-first"]
    assert failed_once["restarts"] == 1 and failed_once["error"]["type"] == "ValueError"
    assert "ValueError: the first run fails on purpose" in failed_once["error"]["traceback"]


def test_the_page_and_its_files_are_served_read_only(spoc_app: Callable[..., App], tmp_path: Path) -> None:
    _, base = start_status_app(spoc_app, tmp_path)
    code, content_type, page = get(f"{base}/")
    assert (code, content_type) == (200, "text/html; charset=utf-8")
    assert b'<script src="/static/status.js">' in page and b'href="/static/status.css"' in page
    for path, kind in (("/static/status.js", "text/javascript"), ("/static/status.css", "text/css")):
        code, content_type, body = get(f"{base}{path}")
        assert code == 200 and content_type.startswith(kind)
        assert b"://" not in body.replace(b"http://www.w3.org/2000/svg", b""), "nothing fetched from elsewhere"
    assert b"://" not in page
    for method in ("POST", "PUT", "DELETE"):
        code, _, _ = get(f"{base}/status.json", method)
        assert code == 405
    assert get(f"{base}/static/../__init__.py")[0] == 404


def test_status_json_lists_every_server_of_the_process(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    metrics = Metrics(port=0, addr="127.0.0.1")
    first = spoc_server(CountsThread("a"), plugins=[metrics], name="first")
    second = spoc_server(CountsThread("b"), name="second")
    first.start()
    second.start()
    spoc_hooks.wait_for("worker_started", worker="a")
    spoc_hooks.wait_for("worker_started", worker="b")
    assert metrics.url is not None
    code, document = get_json(metrics.url.replace("/metrics", "/status.json"))
    listed = {s["server"]: [w["name"] for w in s["workers"]] for s in document["servers"]}
    assert code == 200 and listed == {"first": ["a"], "second": ["b"]}
