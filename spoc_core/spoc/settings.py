"""Reading and checking settings: one way for the core and every plugin.

A worker's setting is read from its ``plugin_options`` first, then from its
attribute of the same name (a class attribute, as a rule), then from the
default the reader gives (`read`). A value is checked where it is read, by a
validator that returns it normalised or raises ``ValueError`` naming its
owner (a worker, or what took the value: ``"Supervisor"``), the setting and
the value, and saying what is expected::

    from spoc import settings

    def check(worker):
        timeout = settings.seconds(worker, "job_timeout", settings.read(worker, "job_timeout", 30.0))
        # ValueError: worker 'mail' (Mailer): job_timeout=-1 must be a number of seconds > 0

Validators that take ``none`` also accept None, which the message says means
``none`` ("to turn it off", "for no limit"); without it, None is refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from ._worker import AbstractWorker

__all__ = ["choice", "number", "owner", "read", "seconds", "text", "whole"]

T = TypeVar("T")


def read(worker: AbstractWorker, setting: str, default: Any = None) -> Any:
    """`worker`'s `setting`: its ``plugin_options[setting]``, else its attribute `setting`, else `default`."""
    options = worker.plugin_options
    if setting in options:
        return options[setting]
    return getattr(worker, setting, default)


def owner(of: AbstractWorker | str) -> str:
    """How a message names the owner of a setting: ``worker 'mail' (Mailer)`` for a worker, else `of` itself."""
    if isinstance(of, str):
        return of
    return f"worker {of.name!r} ({type(of).__name__})"


def _refuse(of: AbstractWorker | str, setting: str, value: object, expected: str, none: str | None) -> ValueError:
    alternative = f", or None {none}" if none is not None else ""
    return ValueError(f"{owner(of)}: {setting}={value!r} must be {expected}{alternative}")


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


@overload
def seconds(of: AbstractWorker | str, setting: str, value: object, *, zero: bool = ..., none: None = None) -> float: ...
@overload
def seconds(of: AbstractWorker | str, setting: str, value: object, *, zero: bool = ..., none: str) -> float | None: ...
def seconds(
    of: AbstractWorker | str, setting: str, value: object, *, zero: bool = False, none: str | None = None
) -> float | None:
    """`value` as a finite number of seconds > 0 (>= 0 with `zero`), as a float; None too, with `none`."""
    if value is None and none is not None:
        return None
    if not _is_number(value) or value < 0 or (value == 0 and not zero):  # type: ignore[operator]
        raise _refuse(of, setting, value, f"a number of seconds {'>= 0' if zero else '> 0'}", none)
    return float(value)  # type: ignore[arg-type]


@overload
def number(
    of: AbstractWorker | str, setting: str, value: object, *, least: float = ..., none: None = None
) -> float: ...
@overload
def number(of: AbstractWorker | str, setting: str, value: object, *, least: float = ..., none: str) -> float | None: ...
def number(
    of: AbstractWorker | str, setting: str, value: object, *, least: float = 0, none: str | None = None
) -> float | None:
    """`value` as a finite number >= `least`, as a float; None too, with `none`."""
    if value is None and none is not None:
        return None
    if not _is_number(value) or value < least:  # type: ignore[operator]
        raise _refuse(of, setting, value, f"a number >= {least:g}", none)
    return float(value)  # type: ignore[arg-type]


@overload
def whole(of: AbstractWorker | str, setting: str, value: object, *, least: int = ..., none: None = None) -> int: ...
@overload
def whole(of: AbstractWorker | str, setting: str, value: object, *, least: int = ..., none: str) -> int | None: ...
def whole(
    of: AbstractWorker | str, setting: str, value: object, *, least: int = 0, none: str | None = None
) -> int | None:
    """`value` as a whole number (an int, not a bool) >= `least`; None too, with `none`."""
    if value is None and none is not None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise _refuse(of, setting, value, f"a whole number >= {least}", none)
    return value


def text(of: AbstractWorker | str, setting: str, value: object) -> str:
    """`value` as a non-empty string."""
    if not isinstance(value, str) or not value:
        raise _refuse(of, setting, value, "a non-empty string", None)
    return value


def choice(of: AbstractWorker | str, setting: str, value: object, choices: Iterable[T]) -> T:
    """`value` when it is one of `choices` (typed as they are)."""
    allowed = tuple(choices)
    if value not in allowed:
        raise ValueError(f"{owner(of)}: {setting}={value!r} is not one of {', '.join(map(repr, allowed))}")
    return allowed[allowed.index(value)]
