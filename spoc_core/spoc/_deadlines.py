"""Timeouts as users give them: checked where they are given, and "no limit" meaning no limit.

A timeout is seconds > 0 (``join_all`` takes 0 too), or ``None`` or
``math.inf`` for no limit; anything else is refused where it is given, naming
the parameter, never accepted only to fail at shutdown.
"""

from __future__ import annotations

import math
import threading

__all__ = ["NO_LIMIT", "check_timeout", "wait_time"]

NO_LIMIT = math.inf
"""A timeout without a limit, as spoc keeps it."""


def check_timeout(value: object, where: str, *, zero: bool = False) -> float:
    """`value` as seconds for the parameter `where`; None and inf become `NO_LIMIT`.

    Raises:
        TypeError: `value` is not a number (or None).
        ValueError: it is negative, NaN, or 0 where `zero` is not allowed.
    """
    if value is None:
        return NO_LIMIT
    least = "0 or more" if zero else "greater than 0"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where} must be a number of seconds {least}, or None for no limit; got {value!r}")
    if math.isnan(value) or value < 0 or (value == 0 and not zero):
        raise ValueError(f"{where} must be a number of seconds {least}, or None for no limit; got {value!r}")
    return float(value)


def wait_time(seconds: float) -> float | None:
    """A wait's timeout: None for no limit, and for one past `threading.TIMEOUT_MAX` (a user's 1e10 or inf),
    where ``Lock.acquire`` and ``Condition.wait`` would raise OverflowError."""
    return None if seconds > threading.TIMEOUT_MAX else max(0.0, seconds)
