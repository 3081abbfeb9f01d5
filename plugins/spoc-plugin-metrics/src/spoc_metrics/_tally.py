"""Tally: the values of user-defined metrics, kept where they are counted and merged where they are exported.

A worker's counts live in one `Tally`. In a process worker's child it is a
batch of changes since the last flush (drained into a plain payload that
travels as a record); in the server's process it holds the totals, into which
batches are merged and thread workers count directly. Counters and histograms
only ever add, so a batch merges by addition and a restarted worker's counts
continue where the last instance's ended.
"""

from __future__ import annotations

import bisect
import threading
from typing import Any

__all__ = ["GaugeValue", "Key", "Tally"]

Key = tuple[str, tuple[str, ...]]
"""(metric family name, label values)."""

GaugeValue = list[Any]
"""[whether it was set (else only added to), value]."""


class Tally:
    """Counters, gauges and histograms of one worker, keyed by family name and label values; thread-safe."""

    __slots__ = ("counters", "gauges", "histograms", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counters: dict[Key, float] = {}
        self.gauges: dict[Key, GaugeValue] = {}
        self.histograms: dict[Key, list[float]] = {}

    # ------------------------------------------------------------------ counting

    def add(self, key: Key, amount: float) -> None:
        with self.lock:
            counters = self.counters
            counters[key] = counters.get(key, 0.0) + amount

    def set_gauge(self, key: Key, value: float) -> None:
        with self.lock:
            self.gauges[key] = [True, value]

    def add_to_gauge(self, key: Key, amount: float) -> None:
        with self.lock:
            gauge = self.gauges.get(key)
            if gauge is None:
                self.gauges[key] = [False, amount]
            else:
                gauge[1] += amount

    def observe(self, key: Key, bounds: tuple[float, ...], value: float) -> None:
        """Count `value` in the first bucket whose upper bound holds it (the last is +Inf), and in the sum."""
        with self.lock:
            histogram = self.histograms.get(key)
            if histogram is None:
                histogram = self.histograms[key] = [0.0] * (len(bounds) + 2)  # the buckets, +Inf, the sum
            histogram[bisect.bisect_left(bounds, value)] += 1
            histogram[-1] += value

    def zero(self, key: Key, buckets: tuple[float, ...] | None = None) -> None:
        """Make `key` a sample of 0 (a counter, or with `buckets` a histogram), so it is exported before it counts."""
        with self.lock:
            if buckets is None:
                self.counters.setdefault(key, 0.0)
            else:
                self.histograms.setdefault(key, [0.0] * (len(buckets) + 2))

    # ------------------------------------------------------------------ moving and reading

    def drain(self) -> dict[str, Any] | None:
        """Take every change since the last drain, as plain values (a record's fields); None when there is none."""
        with self.lock:
            if not (self.counters or self.gauges or self.histograms):
                return None
            counters, gauges, histograms = self.counters, self.gauges, self.histograms
            self.counters, self.gauges, self.histograms = {}, {}, {}
        return {
            "counters": [(name, labels, value) for (name, labels), value in counters.items()],
            "gauges": [(name, labels, was_set, value) for (name, labels), (was_set, value) in gauges.items()],
            "histograms": [(name, labels, counts) for (name, labels), counts in histograms.items()],
        }

    def merge(self, batch: dict[str, Any]) -> None:
        """Add a drained batch: counters and histograms add up; a gauge takes a set value, or adds a change."""
        with self.lock:
            counters, gauges, histograms = self.counters, self.gauges, self.histograms
            for name, labels, value in batch.get("counters", ()):
                key = (name, tuple(labels))
                counters[key] = counters.get(key, 0.0) + value
            for name, labels, was_set, value in batch.get("gauges", ()):
                key = (name, tuple(labels))
                gauge = gauges.get(key)
                if was_set or gauge is None:
                    gauges[key] = [was_set, value]
                else:
                    gauge[1] += value
            for name, labels, counts in batch.get("histograms", ()):
                key = (name, tuple(labels))
                mine = histograms.get(key)
                if mine is None or len(mine) != len(counts):
                    histograms[key] = list(counts)
                else:
                    for i, count in enumerate(counts):
                        mine[i] += count

    def forget_gauges(self) -> None:
        """Drop the gauges: they describe a worker while it lives, and it has ended."""
        with self.lock:
            self.gauges.clear()

    def snapshot(self) -> tuple[dict[Key, float], dict[Key, float], dict[Key, list[float]]]:
        """Copies of the counters, gauge values and histograms (bucket counts, then the sum), for a scrape."""
        with self.lock:
            return (
                dict(self.counters),
                {key: value for key, (_, value) in self.gauges.items()},
                {key: list(counts) for key, counts in self.histograms.items()},
            )
