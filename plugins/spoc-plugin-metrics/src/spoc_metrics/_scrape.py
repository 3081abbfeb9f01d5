"""Gauges read when ``/metrics`` is scraped, for figures that live outside the workers (a queue's backlog in Redis).

A plugin defines its `ScrapeGauge`\\ s once, at module level, and registers a
reader with `read_at_scrape`: a function of the server that returns the
gauges' samples. The server's endpoint calls every reader at each scrape, on
its HTTP thread, never in a worker's path; a reader that raises is logged,
naming it, and its gauges are left out of that scrape. A reader bounds its own
time (a client's timeout): the scrape waits for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from prometheus_client.core import GaugeMetricFamily, Metric

from spoc import Server

from ._definitions import MetricDefinition

__all__ = ["Reader", "ScrapeGauge", "ScrapeSample", "read_at_scrape", "scraped_families"]

logger = logging.getLogger("spoc")


@dataclass(frozen=True)
class ScrapeSample:
    """One value of a `ScrapeGauge`, with its label values (in the gauge's order)."""

    gauge: ScrapeGauge
    labels: tuple[str, ...]
    value: float


class ScrapeGauge:
    """A gauge whose samples a reader returns at scrape time (see `read_at_scrape`).

    Unlike a `Gauge` a worker sets, its samples get no ``worker`` label: name
    one among `labelnames` when a figure is a worker's.

    Args:
        name: the Prometheus name (``spoc_*`` is spoc-plugin-metrics' own).
        documentation: the help text.
        labelnames: the names of its labels.
    """

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = ()) -> None:
        labels = labelnames if isinstance(labelnames, str) else tuple(labelnames)  # a str is refused, named
        others = labels if isinstance(labels, str) else [label for label in labels if label != "worker"]
        checked = MetricDefinition.build("gauge", name, documentation, others)
        if len(set(labels)) != len(labels):
            raise ValueError(f"scrape gauge {name!r}: label names repeat: {labels}")
        self._definition = replace(checked, labelnames=tuple(labels))

    @property
    def name(self) -> str:
        return self._definition.name

    @property
    def labelnames(self) -> tuple[str, ...]:
        return self._definition.labelnames

    def sample(self, value: float, **labels: object) -> ScrapeSample:
        """A sample of this gauge: `value`, with every label given by name."""
        names = self._definition.labelnames
        if set(labels) != set(names):
            raise ValueError(
                f"scrape gauge {self.name!r} takes the labels ({', '.join(names)}), got ({', '.join(labels)})"
            )
        return ScrapeSample(self, tuple(str(labels[name]) for name in names), float(value))

    def __repr__(self) -> str:
        return f"ScrapeGauge({self.name!r})"


Reader = Callable[[Server], Iterable[ScrapeSample]]
"""What `read_at_scrape` takes: a function of the server being scraped that returns its samples."""

_readers: list[Reader] = []
_lock = threading.Lock()


def read_at_scrape(reader: Reader) -> Reader:
    """Call `reader` at every scrape of every server's ``/metrics`` in this process, and serve the samples it
    returns; usable as a decorator. Registering the same function again changes nothing."""
    if not callable(reader):
        raise TypeError(f"read_at_scrape takes a function of the server that returns samples, got {reader!r}")
    with _lock:
        if reader not in _readers:
            _readers.append(reader)
    return reader


def scraped_families(server: Server) -> Iterator[Metric]:
    """The gauges every reader returns for `server`, a family each (a failing reader's left out, and logged)."""
    with _lock:
        readers = list(_readers)
    families: dict[str, GaugeMetricFamily] = {}
    for reader in readers:
        try:
            samples = list(reader(server))
        except Exception as exc:
            logger.warning(
                "metrics: the scrape-time reader %s failed for server %r, its gauges are left out of this "
                "scrape: %s: %s",
                getattr(reader, "__qualname__", repr(reader)),
                server.name,
                type(exc).__name__,
                exc,
            )
            continue
        for sample in samples:
            gauge = sample.gauge
            family = families.get(gauge.name)
            if family is None:
                family = families[gauge.name] = GaugeMetricFamily(
                    gauge.name, gauge._definition.documentation, labels=list(gauge.labelnames)
                )
            family.add_metric(list(sample.labels), sample.value)
    yield from families.values()
