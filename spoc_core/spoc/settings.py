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
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from ._worker import AbstractWorker

__all__ = ["choice", "number", "owner", "read", "seconds", "size", "text", "whole"]

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
    of: AbstractWorker | str,
    setting: str,
    value: object,
    *,
    least: float = ...,
    most: float = ...,
    none: None = None,
) -> float: ...
@overload
def number(
    of: AbstractWorker | str, setting: str, value: object, *, least: float = ..., most: float = ..., none: str
) -> float | None: ...
def number(
    of: AbstractWorker | str,
    setting: str,
    value: object,
    *,
    least: float = 0,
    most: float = math.inf,
    none: str | None = None,
) -> float | None:
    """`value` as a finite number >= `least` (and <= `most`), as a float; None too, with `none`."""
    if value is None and none is not None:
        return None
    if not _is_number(value) or value < least or value > most:  # type: ignore[operator]
        expected = f"a number >= {least:g}" + ("" if most == math.inf else f" and <= {most:g}")
        raise _refuse(of, setting, value, expected, none)
    return float(value)  # type: ignore[arg-type]


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


@overload
def size(of: AbstractWorker | str, setting: str, value: object, *, none: None = None) -> int: ...
@overload
def size(of: AbstractWorker | str, setting: str, value: object, *, none: str) -> int | None: ...
def size(of: AbstractWorker | str, setting: str, value: object, *, none: str | None = None) -> int | None:
    """`value` as a number of bytes > 0: an int, or a string such as ``"512MiB"``, ``"1.5G"`` or ``"100MB"``
    (``K``/``KiB``, ``M``/``MiB``, ``G``/``GiB``, ``T``/``TiB`` are powers of 1024; ``KB``, ``MB``, ``GB``,
    ``TB`` powers of 1000; case does not matter); None too, with `none`."""
    if value is None and none is not None:
        return None
    expected = "a size in bytes > 0: an int, or a string such as '512MiB', '1.5G' or '100MB'"
    if isinstance(value, str) and (match := _SIZE.fullmatch(value)) and match[2].lower() in _UNITS:
        count = int(float(match[1]) * _UNITS[match[2].lower()])
    elif not isinstance(value, bool) and isinstance(value, int):
        count = value
    else:
        raise _refuse(of, setting, value, expected, none)
    if count <= 0:
        raise _refuse(of, setting, value, expected, none)
    return count


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
