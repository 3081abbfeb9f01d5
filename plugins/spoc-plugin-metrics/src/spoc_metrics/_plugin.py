"""Metrics: the plugin object, in the server's process and in process workers' children."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from spoc import AbstractWorker, ErrorRecord, Server, WorkerEvent, WorkerExit, hookimpl, log_extra, settings

from ._flusher import BATCH_TOPIC, ChildFlusher
from ._routing import attach, detach
from ._settings import ListenAddress, check_addr, check_port, listen_address
from ._store import Store

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from ._endpoint import Endpoint
    from ._exposition import ServerMetrics

__all__ = ["Metrics"]

logger = logging.getLogger("spoc.metrics")

counted_first = hookimpl(tryfirst=True)
"""A worker's event is counted before other plugins react to it (a supervisor, a test waiting for it)."""


class Metrics:
    """Prometheus metrics for a spoc server: its workers' lives and the metrics they define, on ``/metrics``;
    beside it ``/healthz``, ``/readyz``, ``/status.json`` and a live status page at ``/`` (docs/metrics.md).

    Installed, the plugin (the entry point ``metrics``) serves every server;
    give a server ``Metrics(...)`` among its plugins to choose its settings.

    Args:
        port: the port to listen on (0 picks a free one, see `address`);
            ``SPOC_METRICS_PORT`` when not given, else 9464, or a free port
            (with a warning) when 9464 is taken: only a port somebody chose
            fails the start when it is in use.
        addr: the address to listen on; ``SPOC_METRICS_ADDR`` when not given,
            else ``127.0.0.1`` (loopback only: a scraper on another host, or
            in another container, needs ``0.0.0.0``, or ``::`` for IPv6 too).
        flush_interval: how often, in seconds, a process worker's child sends
            what it counted to the server (and once more when it ends).

    One server at a time is exported through one Metrics object; a second
    server that starts while the first runs is not exported (a warning says
    so): give it a Metrics object of its own.
    """

    name = "metrics"

    def __init__(self, port: int | None = None, addr: str | None = None, *, flush_interval: float = 0.5) -> None:
        self._port = None if port is None else check_port(port, "Metrics(port=...)")
        self._addr = None if addr is None else check_addr(addr, "Metrics(addr=...)")
        self.flush_interval = settings.seconds("Metrics", "flush_interval", flush_interval)
        self._server: Server | None = None
        self._metrics: ServerMetrics | None = None
        self._endpoint: Endpoint | None = None
        self._stopped = True
        self._flusher: ChildFlusher | None = None

    def __repr__(self) -> str:
        where = f"{self.url}" if self.url else "not serving"
        return f"<Metrics {where}>"

    def __reduce__(self) -> tuple[Any, ...]:
        """To a spawn or forkserver child only the settings travel (the server's state stays in the server)."""
        return (_rebuilt, (self._port, self._addr, self.flush_interval))

    # ------------------------------------------------------------------ what users read

    @property
    def address(self) -> tuple[str, int] | None:
        """The (host, port) the endpoint listens on while its server runs, else None."""
        endpoint = self._endpoint
        return endpoint.address if endpoint is not None else None

    @property
    def url(self) -> str | None:
        """``http://host:port/metrics`` while serving (an unspecified listen address shown as loopback), else None."""
        address = self.address
        if address is None:
            return None
        host, port = address
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        return f"http://[{host}]:{port}/metrics" if ":" in host else f"http://{host}:{port}/metrics"

    @property
    def registry(self) -> CollectorRegistry | None:
        """The prometheus_client registry of the last server this object exported (readable after it stopped)."""
        return self._metrics.registry if self._metrics is not None else None

    # ------------------------------------------------------------------ the server's process

    def _mine(self, server: Server) -> ServerMetrics | None:
        """This server's metrics, once `_claim` made them; None for a server this object does not export."""
        return self._metrics if self._server is server else None

    def _claim(self, server: Server) -> ServerMetrics | None:
        """Export `server` from now on (when it starts); None when this object exports another one, still running."""
        if self._server is not None and not self._stopped:
            logger.warning(
                "metrics: server %r is not exported: this Metrics object already exports server %r, "
                "which is running; give each server its own Metrics(...)",
                server.name,
                self._server.name,
                extra=log_extra(server=server.name),
            )
            return None
        from ._exposition import ServerMetrics

        self._server, self._stopped = server, False
        self._metrics = ServerMetrics(server, Store())
        return self._metrics

    @hookimpl
    def worker_joined(self, server: Server, worker: AbstractWorker) -> None:
        """Every worker of the server: at its start, added later, or a restart's or reload's fresh instance."""
        metrics = self._mine(server)
        if metrics is not None:
            metrics.on_known(worker)
            attach(worker, metrics.store.tally_for(worker.name))  # a thread worker counts straight into it

    @hookimpl
    def server_check(self, server: Server) -> None:
        """Refuse an address or port from the environment that cannot be used: a configuration error."""
        listen_address(self._addr, self._port)  # raises, naming the variable and its value

    @hookimpl
    def server_starting(self, server: Server) -> None:
        metrics = self._claim(server)
        if metrics is None:
            return
        from ._endpoint import EndpointError

        try:
            self._endpoint = _listen(metrics, listen_address(self._addr, self._port), server)
        except (EndpointError, ValueError, TypeError) as exc:  # a port that is taken, say: not the configuration
            server.stop(failure=f"metrics: {exc}")
            return
        host, port = self._endpoint.address
        logger.info(
            "metrics: serving %s for server %r (listening on %s port %d)",
            self.url,
            server.name,
            host,
            port,
            extra=log_extra(server=server.name),
        )

    @hookimpl
    def server_started(self, server: Server) -> None:
        if self._mine(server) is not None and self._endpoint is not None:
            self._endpoint.serve()

    # No worker_event: the hooks below carry every event it reads. An implementation of worker_event is one
    # more call for every event of every worker; at a stop of 104 workers, 313 of them on the monitor thread
    # took stop from 1.2-1.3x to 1.4-1.7x its floor (stop).

    @counted_first
    def worker_started(self, server: Server, worker: AbstractWorker, event: WorkerEvent) -> None:
        metrics = self._mine(server)
        if metrics is not None:
            metrics.on_started(worker, event)

    @counted_first
    def worker_error(self, server: Server, worker: AbstractWorker, error: ErrorRecord, event: WorkerEvent) -> None:
        metrics = self._mine(server)
        if metrics is not None:
            metrics.on_error(worker, error, event)

    @counted_first
    def worker_record(
        self, server: Server, worker: AbstractWorker, topic: str, data: dict[str, Any], event: WorkerEvent
    ) -> None:
        metrics = self._mine(server)
        if metrics is not None:
            metrics.on_record(worker, event)
            if topic == BATCH_TOPIC:
                metrics.store.merge(worker.name, data)

    @counted_first
    def worker_recycling(self, server: Server, worker: AbstractWorker, reason: str) -> None:
        metrics = self._mine(server)
        if metrics is not None:
            metrics.on_recycling(worker, reason)

    @counted_first
    def worker_exited(self, server: Server, worker: AbstractWorker, exit_info: WorkerExit) -> None:
        metrics = self._mine(server)
        if metrics is not None:
            detach(worker)
            metrics.on_exited(worker, exit_info)

    @hookimpl
    def server_stopped(self, server: Server) -> None:
        if self._server is not server or self._stopped:
            return
        self._stopped = True
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            endpoint.close()
            logger.info("metrics: stopped serving for server %r", server.name, extra=log_extra(server=server.name))

    # ------------------------------------------------------------------ in a process worker's child

    @hookimpl
    def child_starting(self, worker: AbstractWorker) -> None:
        self._flusher = ChildFlusher(worker, self.flush_interval)

    @hookimpl
    def child_stopping(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.close()


def _rebuilt(port: int | None, addr: str | None, flush_interval: float) -> Metrics:
    return Metrics(port, addr, flush_interval=flush_interval)


def _listen(metrics: ServerMetrics, where: ListenAddress, server: Server) -> Endpoint:
    """The endpoint, bound where asked; on a free port, with one warning, when the default port is taken.

    A port somebody chose (``Metrics(port=...)``, ``SPOC_METRICS_PORT``) is a
    promise: in use, it fails the start. The default one is not: an installed,
    unconfigured plugin must not make a second program on the machine fail.
    """
    from ._endpoint import Endpoint, EndpointError

    def jobs(of: Server) -> dict[str, dict[str, float]]:
        return metrics.store.jobs() if of is server else {}

    try:
        return Endpoint(metrics.registry, where.host, where.port, jobs)
    except EndpointError as exc:
        if where.port_chosen or not exc.port_in_use:
            raise
    endpoint = Endpoint(metrics.registry, where.host, 0, jobs)
    logger.warning(
        "metrics: the default port %d is in use (another program serves its metrics there?): server %r serves "
        "them on port %d instead; choose a port with Metrics(port=...) or SPOC_METRICS_PORT",
        where.port,
        server.name,
        endpoint.address[1],
        extra=log_extra(server=server.name),
    )
    return endpoint
