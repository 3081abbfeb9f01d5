"""The routes beside ``/metrics``: ``/healthz`` and ``/readyz`` for orchestrators, ``/status.json`` and the live
status page at ``/`` (its script and style under ``/static/``), all read-only.

They answer for every server of the process (`spoc.Server.running_servers`),
from the core's `spoc.Server.status`, so the page, the probes and ``spoc ctl
status`` say the same.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from importlib.resources import files
from typing import Any

from spoc import Server

__all__ = ["JobCounts", "Response", "health", "page_file", "readiness", "status_document"]

Response = tuple[int, str, bytes]
"""(HTTP status code, content type, body)."""

JobCounts = Callable[[Server], dict[str, dict[str, float]]]
"""A server's jobs by worker name: ``{"done": n, "failed": m}`` (what the metrics store counted)."""

MONITOR_ANSWER = 1.0
"""Seconds a server's monitor has to answer `health`'s call: longer, and it is stuck."""

_NOT_READY = {
    "starting": "its setup() has not returned yet",
    "waiting to restart": "it failed, and its restart waits out its backoff",
    "given up": "it failed, and nothing will start it again",
}
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/status.js": ("status.js", "text/javascript; charset=utf-8"),
    "/static/status.css": ("status.css", "text/css; charset=utf-8"),
}


def _json(code: int, body: dict[str, Any]) -> Response:
    return code, "application/json", json.dumps(body).encode()


def health() -> Response:
    """``/healthz``: 200 while every server's monitor answers within `MONITOR_ANSWER`; 503 naming those stuck."""
    servers = Server.running_servers()
    if not servers:
        return _json(503, {"healthy": False, "why": "no server is running in this process"})
    stuck = [server.name for server in servers if not server.monitor_answers(MONITOR_ANSWER)]
    if stuck:
        why = f"the monitor of {', '.join(map(repr, stuck))} did not answer within {MONITOR_ANSWER:g}s"
        return _json(503, {"healthy": False, "stuck": stuck, "why": why})
    return _json(200, {"healthy": True, "servers": [server.name for server in servers]})


def readiness() -> Response:
    """``/readyz``: 200 when every worker of every server has started and none waits to restart or was given
    up; else 503 naming each worker that is not ready and why (and a server that is shutting down)."""
    servers = Server.running_servers()
    if not servers:
        return _json(503, {"ready": False, "servers": [], "why": "no server is running in this process"})
    not_ready: list[dict[str, Any]] = []
    stopping = [server.name for server in servers if server.shutting_down]
    for server in servers:
        for status in server.status():
            why = _NOT_READY.get(status.state)
            if why is not None:
                entry = {"server": server.name, "worker": status.name, "state": status.state, "why": why}
                if status.last_exit_line is not None:
                    entry["last_exit"] = status.last_exit_line
                not_ready.append(entry)
    body: dict[str, Any] = {"ready": not (not_ready or stopping), "servers": [server.name for server in servers]}
    if stopping:
        body["shutting_down"] = stopping
    if not_ready:
        body["not_ready"] = not_ready
    return _json(200 if body["ready"] else 503, body)


def status_document(jobs: JobCounts) -> Response:
    """``/status.json``: each server as ``spoc ctl status --json`` shows it, a ``StreamWorker``'s jobs added."""
    servers = []
    for server in Server.running_servers():
        counted = jobs(server)
        workers = []
        for status in server.status():
            worker = status.to_json()
            worker["jobs"] = counted.get(status.name)
            workers.append(worker)
        servers.append({"server": server.name, "pid": os.getpid(), "workers": workers})
    return _json(200, {"time": time.time(), "servers": servers})


def page_file(path: str) -> Response | None:
    """The status page, or its script or style, for `path`; None for any other path."""
    found = _STATIC.get(path)
    if found is None:
        return None
    name, content_type = found
    return 200, content_type, files("spoc_metrics").joinpath("static").joinpath(name).read_bytes()
