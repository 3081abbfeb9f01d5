"""The HTTP endpoint: ``/metrics`` in the Prometheus text format (or OpenMetrics when the scraper asks for it),
and the read-only status routes beside it (`_status_routes`: ``/healthz``, ``/readyz``, ``/status.json``, ``/``).

The socket is bound when the server starts (so a port in use fails the start
at once, before any worker runs) and served from a thread once every worker
has been launched; it is closed when the server has stopped, at once: the
serving thread waits on the socket and on a wake-up pipe, never on a poll
interval (`socketserver`'s ``serve_forever`` polls for its shutdown request,
which made every server's stop up to 0.1 s longer). Processes forked
while it is open (the server's fork server, fork-started workers) close their
copy of the socket, so they never hold the port.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import threading
import weakref
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import CollectorRegistry

from ._status_routes import JobCounts, health, page_file, readiness, status_document

__all__ = ["Endpoint", "EndpointError"]


class EndpointError(Exception):
    """The endpoint could not listen where it was asked to; `port_in_use` when something else holds the port."""

    def __init__(self, message: str, port_in_use: bool = False) -> None:
        super().__init__(message)
        self.port_in_use = port_in_use


def _no_jobs(server: Any) -> dict[str, dict[str, float]]:
    return {}


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (one line per scrape every few seconds is noise)."""


_open: weakref.WeakSet[Endpoint] = weakref.WeakSet()


class Endpoint:
    """An HTTP server for one registry, bound at construction."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int, jobs: JobCounts = _no_jobs) -> None:
        family = _family_of(host, port)
        # timeout 0: handle_request() never waits, the serving loop has seen the socket readable already
        server_class = type("MetricsHTTPServer", (ThreadingWSGIServer,), {"address_family": family, "timeout": 0})
        metrics = make_wsgi_app(registry)
        try:
            self._httpd: ThreadingWSGIServer = make_server(
                host, port, _routes(metrics, jobs), server_class, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise EndpointError(_explain(host, port, exc), port_in_use=exc.errno == errno.EADDRINUSE) from exc
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        _open.add(self)

    @property
    def address(self) -> tuple[str, int]:
        """The host and port it listens on (the port chosen when 0 was asked for)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def serve(self) -> None:
        """Answer scrapes from a daemon thread."""
        self._thread = threading.Thread(target=self._serve, name="spoc-metrics-http", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._httpd.fileno(), selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fd for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                self._httpd.handle_request()  # each request on a thread of its own (ThreadingWSGIServer)

    def close(self) -> None:
        """Stop answering and release the port, without waiting for anything but the serving thread."""
        _open.discard(self)
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join()
        self._httpd.server_close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def _close_copy(self) -> None:
        """In a forked child: close the inherited socket and pipe without touching the parent's server."""
        for close in (self._httpd.socket.close, lambda: os.close(self._wake_r), lambda: os.close(self._wake_w)):
            try:
                close()
            except OSError:
                pass


def _family_of(host: str, port: int) -> socket.AddressFamily:
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise EndpointError(f"cannot serve metrics on {host}:{port}: unknown address {host!r} ({exc})") from exc
    return infos[0][0]


def _explain(host: str, port: int, exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        hint = "ports below 1024 need privileges: choose a higher one"
    elif exc.errno == errno.EADDRINUSE:
        return (
            f"cannot serve metrics on {host}:{port}: port {port} is already in use; stop what holds it, or "
            f"choose another port with Metrics(port=...) or SPOC_METRICS_PORT (0 picks a free one)"
        )
    else:
        hint = "check the address (Metrics(addr=...) or SPOC_METRICS_ADDR)"
    return f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; {hint}"


def _routes(metrics: Callable[..., Iterable[bytes]], jobs: JobCounts) -> Callable[..., Iterable[bytes]]:
    """``/metrics`` (and its query string) to prometheus_client's app; the status routes (`_status_routes`) to
    theirs, GET only; 404 elsewhere."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET"), ("Content-Type", "text/plain")])
            return [b"read-only: GET only\n"]
        if path == "/healthz":
            response = health()
        elif path == "/readyz":
            response = readiness()
        elif path == "/status.json":
            response = status_document(jobs)
        else:
            found = page_file(path)
            response = found if found is not None else (404, "text/plain; charset=utf-8", b"not found\n")
        code, content_type, body = response
        start_response(
            f"{code} {HTTPStatus(code).phrase}",
            [("Content-Type", content_type), ("Cache-Control", "no-store"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app


def _close_after_fork() -> None:
    for endpoint in list(_open):
        endpoint._close_copy()
    _open.clear()


os.register_at_fork(after_in_child=_close_after_fork)
