"""Timeouts as users give them: checked where they are given, and "no limit" meaning no limit.

A timeout is seconds > 0 (``join_all`` takes 0 too), or ``None`` or
``math.inf`` for no limit; anything else is refused where it is given, naming
the parameter, never accepted only to fail at shutdown.
"""

from __future__ import annotations

import math
import threading

from . import settings

__all__ = ["NO_LIMIT", "check_timeout", "wait_time"]

NO_LIMIT = math.inf
"""A timeout without a limit, as spoc keeps it."""


def check_timeout(value: object, owner: str, setting: str, *, zero: bool = False) -> float:
    """`value` as seconds for the parameter `setting` of `owner` (`spoc.settings`' message); None and inf become
    `NO_LIMIT`.

    Raises:
        TypeError: `value` is not a number (or None).
        ValueError: it is negative, NaN, or 0 where `zero` is not allowed.
    """
    if value is None or (isinstance(value, float) and value == NO_LIMIT):
        return NO_LIMIT
    if isinstance(value, bool) or not isinstance(value, int | float):
        least = ">= 0" if zero else "> 0"
        raise TypeError(f"{owner}: {setting}={value!r} must be a number of seconds {least}, or None for no limit")
    seconds = settings.seconds(owner, setting, value, zero=zero, none="for no limit")
    assert seconds is not None
    return seconds


def wait_time(seconds: float) -> float | None:
    """A wait's timeout: None for no limit, and for one past `threading.TIMEOUT_MAX` (a user's 1e10 or inf),
    where ``Lock.acquire`` and ``Condition.wait`` would raise OverflowError."""
    return None if seconds > threading.TIMEOUT_MAX else max(0.0, seconds)
