"""The user-defined metrics of one server: each worker's totals, by name, and the definitions children sent."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from spoc import log_extra

from ._definitions import MetricDefinition, defined
from ._routing import loose_tallies
from ._tally import Key, Tally

__all__ = ["Store"]

logger = logging.getLogger("spoc.metrics")

JOBS_FAMILY = "streamworker_jobs"
"""spoc-plugin-redis's counter of jobs by outcome (``streamworker_jobs_total``), which the status page shows."""


class Store:
    """Totals per worker name: a restarted worker's counts go on from where the last instance's ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[str, Tally] = {}
        self._definitions: dict[str, MetricDefinition] = {}
        self._refused: set[tuple[str, str]] = set()

    def tally_for(self, worker: str) -> Tally:
        with self._lock:
            tally = self._tallies.get(worker)
            if tally is None:
                tally = self._tallies[worker] = Tally()
            return tally

    def merge(self, worker: str, batch: dict[str, Any]) -> None:
        """Add a batch a worker's child sent; samples of a metric it defined differently are refused, once said."""
        refused = self._learn(worker, batch.get("definitions", ()))
        if refused:
            batch = {kind: [s for s in samples if s[0] not in refused] for kind, samples in batch.items()}
        self.tally_for(worker).merge(batch)

    def _learn(self, worker: str, plain_definitions: Any) -> set[str]:
        refused: set[str] = set()
        with self._lock:
            for plain in plain_definitions:
                definition = MetricDefinition.from_plain(plain)
                known = self._definitions.get(definition.name) or defined(definition.name)
                if known is None or known == definition:
                    self._definitions[definition.name] = definition
                    continue
                refused.add(definition.name)
                if (worker, definition.name) not in self._refused:
                    self._refused.add((worker, definition.name))
                    logger.error(
                        "metric %r from worker %r is %s, but it is already %s; its samples from %r are dropped: "
                        "define it the same way everywhere",
                        definition.name,
                        worker,
                        definition.describe(),
                        known.describe(),
                        worker,
                        extra=log_extra(worker),
                    )
            refused |= {name for who, name in self._refused if who == worker}
        return refused

    def definition(self, name: str) -> MetricDefinition | None:
        return self._definitions.get(name) or defined(name)

    def forget_gauges(self, worker: str) -> None:
        with self._lock:
            tally = self._tallies.get(worker)
        if tally is not None:
            tally.forget_gauges()

    def snapshots(self) -> Iterator[tuple[str, tuple[dict[Key, float], dict[Key, float], dict[Key, list[float]]]]]:
        """(worker name, its counters, gauges and histograms) for every worker, then for samples counted
        where no server's store took them (a name may come twice: the values add up)."""
        with self._lock:
            tallies = list(self._tallies.items())
        for worker, tally in [*tallies, *loose_tallies().items()]:
            yield worker, tally.snapshot()

    def jobs(self) -> dict[str, dict[str, float]]:
        """Each worker's jobs done and failed so far (``streamworker_jobs_total`` of spoc-plugin-redis's
        ``StreamWorker``), for the status page; a worker that counted none is left out."""
        definition = self.definition(JOBS_FAMILY)
        if definition is None or "outcome" not in definition.labelnames:
            return {}
        outcome = definition.labelnames.index("outcome")
        found: dict[str, dict[str, float]] = {}
        for worker, (counters, _, _) in self.snapshots():
            for (family, labels), value in counters.items():
                if family == JOBS_FAMILY and labels[outcome] in ("done", "failed"):
                    counts = found.setdefault(worker, {"done": 0.0, "failed": 0.0})
                    counts[labels[outcome]] += value
        return found
