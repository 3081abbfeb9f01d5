"""What a user-defined metric is (kind, name, help, labels, buckets), and the process's table of them.

Defining the same metric again, in another worker or after a restart, gives
the same definition; defining a different metric under a name already taken
is an error that names both.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["DEFAULT_BUCKETS", "Kind", "MetricDefinition", "define", "defined"]

Kind = Literal["counter", "gauge", "histogram"]

DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""prometheus_client's default histogram buckets, in seconds."""

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_PREFIX = "spoc_"
_PARENT_DEFAULTS = frozenset(
    {
        "process_virtual_memory_bytes",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_cpu_seconds",
        "process_open_fds",
        "process_max_fds",
        "python_info",
        "python_gc_objects_collected",
        "python_gc_objects_uncollectable",
        "python_gc_collections",
    }
)


@dataclass(frozen=True)
class MetricDefinition:
    """One metric family: its kind, name (a counter's without ``_total``), help, label names and buckets."""

    kind: Kind
    name: str
    documentation: str
    labelnames: tuple[str, ...]
    buckets: tuple[float, ...] = ()

    @classmethod
    def build(
        cls,
        kind: Kind,
        name: str,
        documentation: str,
        labelnames: Iterable[str],
        buckets: Sequence[float] | None = None,
    ) -> MetricDefinition:
        """Check every part and build the definition; raise ValueError or TypeError naming what is wrong."""
        what = f"{kind} {name!r}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"{kind} name {name!r} is not a valid Prometheus metric name: use letters, digits, "
                f"underscores and colons, not starting with a digit (e.g. 'jobs_processed_total')"
            )
        family = name[: -len("_total")] if kind == "counter" and name.endswith("_total") else name
        if family.startswith(_RESERVED_PREFIX) or family in _PARENT_DEFAULTS:
            raise ValueError(
                f"{what}: the name is taken by spoc-plugin-metrics' own metrics (spoc_* and the server's "
                f"process_*/python_* metrics); choose another, e.g. 'myapp_{family}'"
            )
        if not isinstance(documentation, str):
            raise TypeError(f"{what}: documentation must be a str (the metric's help text), got {documentation!r}")
        if isinstance(labelnames, str):
            raise TypeError(f"{what}: labelnames takes a list of names, got the string {labelnames!r}")
        labels = tuple(labelnames)
        for label in labels:
            if not isinstance(label, str) or not _LABEL.match(label) or label.startswith("__"):
                raise ValueError(f"{what}: {label!r} is not a valid label name (letters, digits, underscores)")
            if label == "worker":
                raise ValueError(f"{what}: the label 'worker' is added to every sample by spoc; leave it out")
            if label == "le" and kind == "histogram":
                raise ValueError(f"{what}: 'le' is the label of a histogram's buckets; choose another")
        if len(set(labels)) != len(labels):
            raise ValueError(f"{what}: label names repeat: {labels}")
        bounds: tuple[float, ...] = ()
        if kind == "histogram":
            bounds = _bounds(what, DEFAULT_BUCKETS if buckets is None else buckets)
        elif buckets is not None:
            raise TypeError(f"{what}: only a histogram has buckets")
        return cls(kind, family, documentation, labels, bounds)

    def plain(self) -> tuple[Any, ...]:
        """The definition as plain values, to travel in a record."""
        return (self.kind, self.name, self.documentation, list(self.labelnames), list(self.buckets))

    @classmethod
    def from_plain(cls, plain: Sequence[Any]) -> MetricDefinition:
        kind, name, documentation, labelnames, buckets = plain
        return cls(kind, name, documentation, tuple(labelnames), tuple(buckets))

    def describe(self) -> str:
        labels = f" with labels ({', '.join(self.labelnames)})" if self.labelnames else " without labels"
        buckets = f" and buckets {list(self.buckets)}" if self.kind == "histogram" else ""
        return f"a {self.kind}{labels}{buckets}"


def _bounds(what: str, buckets: Sequence[float]) -> tuple[float, ...]:
    try:
        bounds = [float(b) for b in buckets]
    except (TypeError, ValueError):
        raise TypeError(f"{what}: buckets must be numbers, got {buckets!r}") from None
    if bounds and math.isinf(bounds[-1]):
        bounds.pop()  # +Inf is always there
    if not bounds or sorted(set(bounds)) != bounds:
        raise ValueError(f"{what}: buckets must be a non-empty list of increasing upper bounds, got {buckets!r}")
    return tuple(bounds)


_definitions: dict[str, MetricDefinition] = {}
_lock = threading.Lock()


def define(definition: MetricDefinition) -> MetricDefinition:
    """Record `definition` in this process; the same one again is fine, a different one under its name is not."""
    with _lock:
        known = _definitions.setdefault(definition.name, definition)
    if known != definition:
        raise ValueError(
            f"metric {definition.name!r} is already defined as {known.describe()}; it cannot also be "
            f"{definition.describe()}. Define it once (at module level) and import it where it is used."
        )
    return known


def defined(name: str) -> MetricDefinition | None:
    """The definition of the family `name` in this process, if any."""
    return _definitions.get(name)
