"""Running tests/apps/status_app.py under ``spoc run`` and reading its HTTP routes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spoc.testing import App

APPS = Path(__file__).resolve().parent / "apps"


def start_status_app(spoc_app: Callable[..., App], flags: Path, **env: str) -> tuple[App, str]:
    """The app in its own session, and the base URL of its endpoint, once every first worker was launched."""
    app = spoc_app(command=["spoc", "run", "status_app:server"], cwd=APPS, env={"STATUS_FLAGS": str(flags), **env})
    (match,) = app.expect(r"metrics: serving (http://[^ ]+)/metrics", stream="stderr")
    app.expect(r"worker 'blocker' started", stream="stderr")
    return app, match[1]


def get(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    """(status code, content type, body) of one request; an error status is an answer too."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def get_json(url: str) -> tuple[int, Any]:
    code, _, body = get(url)
    return code, json.loads(body)


def until(ask: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    """Ask again (every 20 ms) until an answer is `ok`; return it. Raises AssertionError with the last one."""
    deadline = time.monotonic() + timeout
    while True:
        answer = ask()
        if ok(answer):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"no good answer within {timeout}s; the last: {answer!r}")
        time.sleep(0.02)
