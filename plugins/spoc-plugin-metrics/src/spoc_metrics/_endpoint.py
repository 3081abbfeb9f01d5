"""The HTTP endpoint: ``/metrics`` in the Prometheus text format, or OpenMetrics when the scraper asks for it.

The socket is bound when the server starts (so a port in use fails the start
at once, before any worker runs) and served from a thread once every worker
has been launched; it is closed when the server has stopped. Processes forked
while it is open (the server's fork server, fork-started workers) close their
copy of the socket, so they never hold the port.
"""

from __future__ import annotations

import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import CollectorRegistry

__all__ = ["Endpoint", "EndpointError"]

POLL_INTERVAL = 0.1
"""How often the serving loop looks for a shutdown request: the most closing the endpoint waits."""


class EndpointError(Exception):
    """The endpoint could not listen where it was asked to."""


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (one line per scrape every few seconds is noise)."""


_open: weakref.WeakSet[Endpoint] = weakref.WeakSet()


class Endpoint:
    """An HTTP server for one registry, bound at construction."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        family = _family_of(host, port)
        server_class = type("MetricsHTTPServer", (ThreadingWSGIServer,), {"address_family": family})
        metrics = make_wsgi_app(registry)
        try:
            self._httpd: ThreadingWSGIServer = make_server(
                host, port, _only_metrics(metrics), server_class, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise EndpointError(_explain(host, port, exc)) from exc
        self._thread: threading.Thread | None = None
        _open.add(self)

    @property
    def address(self) -> tuple[str, int]:
        """The host and port it listens on (the port chosen when 0 was asked for)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def serve(self) -> None:
        """Answer scrapes from a daemon thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(POLL_INTERVAL,), name="spoc-metrics-http", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop answering and release the port."""
        _open.discard(self)
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def _close_copy(self) -> None:
        """In a forked child: close the inherited socket without touching the parent's server."""
        try:
            self._httpd.socket.close()
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
    elif exc.errno in (98, 48):  # EADDRINUSE on Linux, macOS
        return (
            f"cannot serve metrics on {host}:{port}: port {port} is already in use; stop what holds it, or "
            f"choose another port with Metrics(port=...) or SPOC_METRICS_PORT (0 picks a free one)"
        )
    else:
        hint = "check the address (Metrics(addr=...) or SPOC_METRICS_ADDR)"
    return f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; {hint}"


def _only_metrics(metrics: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``/metrics`` (and its query string) to prometheus_client's app; a pointer at ``/``; 404 elsewhere."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        status = "200 OK" if path == "/" else "404 Not Found"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [b"spoc metrics: see /metrics\n"]

    return app


def _close_after_fork() -> None:
    for endpoint in list(_open):
        endpoint._close_copy()
    _open.clear()


os.register_at_fork(after_in_child=_close_after_fork)
