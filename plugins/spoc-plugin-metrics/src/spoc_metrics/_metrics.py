"""Counter, Gauge and Histogram: metrics a worker defines and counts, thread, process or async alike.

They look like prometheus_client's and are used the same way, but they hold
no value themselves: each sample goes to the tally of the worker it was
counted in (see `_routing`), which the server's Metrics plugin exports with a
``worker`` label. Define them once at module level; defining one again with
the same settings (in another worker, after a restart) is not an error.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from ._definitions import Kind, MetricDefinition, define
from ._routing import tally_here
from ._tally import Key

__all__ = ["Counter", "Gauge", "Histogram"]

_M = TypeVar("_M", bound="_Metric")
_F = TypeVar("_F", bound=Callable[..., Any])


class _Metric:
    """What the three kinds share: a definition, label values, and the key their samples are counted under."""

    kind: ClassVar[Kind]
    _definition: MetricDefinition
    _key: Key | None
    _children: dict[tuple[str, ...], Any]

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        buckets: Sequence[float] | None = None,
    ) -> None:
        self._definition = define(MetricDefinition.build(self.kind, name, documentation, labelnames, buckets))
        self._key = None if self._definition.labelnames else (self._definition.name, ())
        self._children = {}

    @property
    def name(self) -> str:
        """The metric family's name (a counter's without ``_total``, which the exposition adds)."""
        return self._definition.name

    @property
    def labelnames(self) -> tuple[str, ...]:
        return self._definition.labelnames

    def labels(self: _M, *values: object, **by_name: object) -> _M:
        """The metric for these label values, by position or by name (the ``worker`` label is added for you)."""
        names = self._definition.labelnames
        if not names:
            raise ValueError(f"{self.kind} {self.name!r} has no labels; call its methods directly")
        if self._key is not None:
            raise ValueError(f"{self.kind} {self.name!r}: labels() was already given; call it on the metric itself")
        if values and by_name:
            raise ValueError(f"{self.kind} {self.name!r}: give label values by position or by name, not both")
        if by_name:
            if set(by_name) != set(names):
                raise ValueError(
                    f"{self.kind} {self.name!r} takes the labels ({', '.join(names)}), got ({', '.join(by_name)})"
                )
            values = tuple(by_name[name] for name in names)
        elif len(values) != len(names):
            raise ValueError(
                f"{self.kind} {self.name!r} takes {len(names)} label values ({', '.join(names)}), got {len(values)}"
            )
        texts = tuple(str(value) for value in values)
        child = self._children.get(texts)
        if child is None:
            child = self._children[texts] = self._bound((self._definition.name, texts))
        return child

    def _bound(self: _M, key: Key) -> _M:
        child = object.__new__(type(self))
        child._definition = self._definition
        child._key = key
        child._children = {}
        return child

    def _key_or_raise(self) -> Key:
        key = self._key
        if key is None:
            names = ", ".join(f"{name}=..." for name in self._definition.labelnames)
            raise ValueError(f"{self.kind} {self.name!r} has labels: call .labels({names}) first")
        return key

    def __repr__(self) -> str:
        values = () if self._key is None else self._key[1]
        labels = f" {dict(zip(self.labelnames, values, strict=True))}" if values else ""
        return f"<{type(self).__name__} {self.name!r}{labels}>"


class Counter(_Metric):
    """A count that only goes up (jobs processed, errors): exposed as ``<name>_total``.

    Args:
        name: the metric's name, with or without ``_total``.
        documentation: its help text.
        labelnames: its labels, besides ``worker`` (which spoc adds).
    """

    kind = "counter"

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` (1 by default; never negative) to the count of the worker this runs in."""
        if amount < 0:
            raise ValueError(f"counter {self.name!r}: inc({amount!r}): a counter only goes up; use a Gauge")
        tally_here().add(self._key_or_raise(), amount)


class Gauge(_Metric):
    """A value that goes up and down (jobs in progress, queue depth), per worker, while the worker lives.

    When a worker ends, its gauges are dropped: a restarted worker starts
    from no value, as a fresh process would.
    """

    kind = "gauge"

    def set(self, value: float) -> None:
        tally_here().set_gauge(self._key_or_raise(), float(value))

    def inc(self, amount: float = 1.0) -> None:
        tally_here().add_to_gauge(self._key_or_raise(), amount)

    def dec(self, amount: float = 1.0) -> None:
        tally_here().add_to_gauge(self._key_or_raise(), -amount)


class Histogram(_Metric):
    """Observations counted in buckets (job durations, sizes), with their count and sum.

    Args:
        buckets: the buckets' upper bounds, increasing (+Inf is added);
            prometheus_client's defaults, for seconds, when not given.
    """

    kind = "histogram"

    def observe(self, value: float) -> None:
        tally_here().observe(self._key_or_raise(), self._definition.buckets, value)

    def time(self) -> _Timer:
        """Observe the seconds a ``with`` block, or each call of a decorated function, takes."""
        self._key_or_raise()
        return _Timer(self)


class _Timer:
    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._began = 0.0

    def __enter__(self) -> _Timer:
        self._began = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._histogram.observe(time.perf_counter() - self._began)

    def __call__(self, function: _F) -> _F:
        histogram = self._histogram
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                with _Timer(histogram):
                    return await function(*args, **kwargs)

            return timed_async  # type: ignore[return-value]

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with _Timer(histogram):
                return function(*args, **kwargs)

        return timed  # type: ignore[return-value]
