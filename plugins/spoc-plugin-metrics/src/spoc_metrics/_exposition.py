"""One server's metrics in one prometheus_client registry: the workers' lives, the parent process, user metrics.

Built when the server starts, in the server's process only (children never
import prometheus_client). What the server knows is counted from its hooks
(`ServerMetrics.on_*`, all on the hooks' serialised calls); what is read at
scrape time (up, last seen, a process worker's CPU and memory, signals, and the
plugins' `ScrapeGauge` readers) comes from `collect`, on the HTTP server's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

import spoc
from spoc import AbstractWorker, ErrorRecord, Server, WorkerEvent, WorkerExit

from ._definitions import DEFAULT_BUCKETS, MetricDefinition
from ._scrape import scraped_families
from ._store import Store
from ._tally import Tally

__all__ = ["BUILTIN", "ServerMetrics"]

OUTCOMES = ("abandoned", "clean", "failed", "killed", "stopped")
PHASES = ("setup", "main", "teardown")
SIGNALS = ("SIGINT", "SIGTERM")


def _builtin(kind: Any, name: str, help_text: str, *labels: str) -> MetricDefinition:
    return MetricDefinition(kind, name, help_text, ("worker", *labels), DEFAULT_BUCKETS if kind == "histogram" else ())


STARTS = _builtin("counter", "spoc_worker_starts", "Times a worker's setup() completed and its main() began.")
EXITS = _builtin("counter", "spoc_worker_exits", "Times a worker ended, by outcome.", "outcome")
FAILURES = _builtin("counter", "spoc_worker_failures", "Errors a worker raised, by lifecycle phase.", "phase")
RESTARTS = _builtin("counter", "spoc_worker_restarts", "Times a supervisor restarted a worker.")
RECYCLES = _builtin(
    "counter",
    "spoc_worker_recycles",
    "Times a worker was recycled (replaced gracefully: Server.recycle_worker), by reason.",
    "reason",
)
SETUP = _builtin("histogram", "spoc_worker_setup_duration_seconds", "Seconds a worker's setup() took.")
TEARDOWN = _builtin("histogram", "spoc_worker_teardown_duration_seconds", "Seconds a worker's teardown() took.")
BUILTIN = (STARTS, EXITS, FAILURES, RESTARTS, RECYCLES, SETUP, TEARDOWN)


class ServerMetrics(Collector):
    """The registry one server's endpoint serves, and the state its hooks keep for it."""

    def __init__(self, server: Server, store: Store) -> None:
        self.server = server
        self.store = store
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(self)
        self._counts = Tally()
        self._lock = threading.Lock()
        self._up: dict[str, bool] = {}
        self._last_seen: dict[str, float] = {}
        self._restarts: dict[str, int] = {}  # the highest `restarts` seen of each worker

    # ------------------------------------------------------------------ from the hooks

    def on_known(self, worker: AbstractWorker) -> None:
        """A worker the server will run: its counters start at 0, so rates work from its first scrape."""
        name = worker.name
        zero = self._counts.zero
        zero((STARTS.name, (name,)))
        zero((RESTARTS.name, (name,)))
        for outcome in OUTCOMES:
            zero((EXITS.name, (name, outcome)))
        for phase in PHASES:
            zero((FAILURES.name, (name, phase)))
        zero((SETUP.name, (name,)), SETUP.buckets)
        zero((TEARDOWN.name, (name,)), TEARDOWN.buckets)

    def on_started(self, worker: AbstractWorker, event: WorkerEvent) -> None:
        """Its setup ended: how long it took (the ``"startup"`` event's duration)."""
        self._seen(worker, event.wall)
        self._observe_setup(worker, event)
        with self._lock:
            self._up[worker.name] = True
        self._counts.add((STARTS.name, (worker.name,)), 1.0)

    def on_error(self, worker: AbstractWorker, error: ErrorRecord, event: WorkerEvent) -> None:
        self._seen(worker, event.wall)
        if error.phase == "setup":  # a setup that failed took time too
            self._observe_setup(worker, event)
        self._counts.add((FAILURES.name, (worker.name, error.phase)), 1.0)

    def on_recycling(self, worker: AbstractWorker, reason: str) -> None:
        """A recycle of it began: counted by its reason (its fresh instance is not counted as a restart)."""
        self._counts.add((RECYCLES.name, (worker.name, reason)), 1.0)

    def on_record(self, worker: AbstractWorker, event: WorkerEvent) -> None:
        """A record, a metrics batch among them: a sign of life."""
        self._seen(worker, event.wall)

    def on_exited(self, worker: AbstractWorker, exit_info: WorkerExit) -> None:
        """Its end and its teardown's duration are counted; its gauges go with it (they describe a live worker)."""
        self.store.forget_gauges(worker.name)
        self._seen(worker, None)
        with self._lock:
            self._up[worker.name] = False
        self._counts.add((EXITS.name, (worker.name, exit_info.outcome)), 1.0)
        if exit_info.teardown_duration is not None:
            self._counts.observe((TEARDOWN.name, (worker.name,)), TEARDOWN.buckets, exit_info.teardown_duration)

    def _observe_setup(self, worker: AbstractWorker, event: WorkerEvent) -> None:
        duration = event.data.get("duration")
        if isinstance(duration, float):
            self._counts.observe((SETUP.name, (worker.name,)), SETUP.buckets, duration)

    def _seen(self, worker: AbstractWorker, wall: float | None) -> None:
        """Note the worker's last sign of life; a new instance that a supervisor restarted counts as a restart (a
        reload's or recycle's has the same ``restarts`` as the one it replaced: not one)."""
        restarted = False
        with self._lock:
            if wall is not None:
                self._last_seen[worker.name] = wall
            if worker.restarts > self._restarts.get(worker.name, 0):
                self._restarts[worker.name] = worker.restarts
                restarted = True
        if restarted:
            self._counts.add((RESTARTS.name, (worker.name,)), 1.0)

    # ------------------------------------------------------------------ at scrape time

    def collect(self) -> Iterator[Metric]:
        workers = self.server.workers
        with self._lock:
            up = dict(self._up)
            last_seen = dict(self._last_seen)
        yield _gauge(
            "spoc_worker_up",
            "1 while a worker runs its main(), else 0.",
            ("worker",),
            {(w.name,): float(up.get(w.name, False) and w.exit_info is None) for w in workers},
        )
        replicas = self.server.replica_counts()
        yield _gauge(
            "spoc_worker_replicas",
            "Replicas of a worker (by the name it was added with): the count wanted (state=desired, "
            "Server.scale) and those running now (state=running).",
            ("worker", "state"),
            {
                **{(name, "desired"): float(count.desired) for name, count in replicas.items()},
                **{(name, "running"): float(count.running) for name, count in replicas.items()},
            },
        )
        yield _gauge(
            "spoc_worker_last_seen_timestamp_seconds",
            "Unix time of the last event, record or metrics batch the server received from a worker.",
            ("worker",),
            {(name,): wall for name, wall in last_seen.items()},
        )
        usage = {s.name: (s.cpu, s.rss) for s in self.server.status() if s.rss is not None and s.cpu is not None}
        yield _gauge(
            "spoc_worker_resident_memory_bytes",
            "Resident memory of a process worker's child, in bytes.",
            ("worker",),
            {(name,): float(u[1]) for name, u in usage.items()},
        )
        cpu = CounterMetricFamily(
            "spoc_worker_cpu_seconds", "User and system CPU time of a process worker's child.", labels=["worker"]
        )
        for name, u in usage.items():
            cpu.add_metric([name], u[0])
        yield cpu
        signals = CounterMetricFamily(
            "spoc_server_signals_received", "Shutdown signals the server received.", labels=["signal"]
        )
        received = self.server.signals_received
        for name in sorted({*SIGNALS, *received}):
            signals.add_metric([name], float(received.count(name)))
        yield signals
        yield _gauge("spoc_build_info", "The version of spoc-core; always 1.", ("version",), {(spoc.__version__,): 1.0})
        counters, _, histograms = self._counts.snapshot()
        for definition in BUILTIN:
            chosen = counters if definition.kind == "counter" else histograms
            samples = {labels: value for (name, labels), value in chosen.items() if name == definition.name}
            yield _family(definition, definition.labelnames, samples)
        yield from self._user_families()
        yield from scraped_families(self.server)

    def _user_families(self) -> Iterator[Metric]:
        """Each user-defined metric, its samples from every worker (a ``worker`` label in front)."""
        by_family: dict[str, dict[tuple[str, ...], Any]] = {}
        for worker, snapshot in self.store.snapshots():
            for values in snapshot:
                for (name, labels), value in values.items():
                    samples = by_family.setdefault(name, {})
                    key = (worker, *labels)
                    samples[key] = _added(samples.get(key), value)
        for name in sorted(by_family):
            definition = self.store.definition(name)
            if definition is not None:
                yield _family(definition, ("worker", *definition.labelnames), by_family[name])


def _added(old: Any, new: Any) -> Any:
    if old is None:
        return new
    if isinstance(new, list):
        return [a + b for a, b in zip(old, new, strict=True)]
    return old + new


def _gauge(name: str, help_text: str, labels: tuple[str, ...], samples: dict[tuple[str, ...], float]) -> Metric:
    gauge = GaugeMetricFamily(name, help_text, labels=list(labels))
    for values, value in samples.items():
        gauge.add_metric(list(values), value)
    return gauge


def _family(definition: MetricDefinition, labels: tuple[str, ...], samples: dict[tuple[str, ...], Any]) -> Metric:
    """A metric family of `definition`'s kind with `samples` (label values -> value, or bucket counts and sum)."""
    name, help_text, names = definition.name, definition.documentation, list(labels)
    if definition.kind == "histogram":
        histogram = HistogramMetricFamily(name, help_text, labels=names)
        bounds = [*map(floatToGoString, definition.buckets), "+Inf"]
        for values, counts in samples.items():
            cumulative, buckets = 0.0, []
            for bound, count in zip(bounds, counts[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            histogram.add_metric(list(values), buckets, counts[-1])
        return histogram
    family: Metric
    if definition.kind == "counter":
        family = CounterMetricFamily(name, help_text, labels=names)
    else:
        family = GaugeMetricFamily(name, help_text, labels=names)
    for values, value in samples.items():
        family.add_metric(list(values), value)
    return family
