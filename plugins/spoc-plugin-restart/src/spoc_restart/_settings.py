"""What a worker's supervision is: its restart policy, when to give up on it, and its watchdog timeout.

Each setting is read from the worker's ``plugin_options`` (given to its
constructor) first, then from its attribute of the same name (a class
attribute, as a rule), then from the `Supervisor`'s default. Bad values are
refused by the ``worker_check`` hook before any worker starts, with a message
that names the worker, the setting and its value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = [
    "POLICIES",
    "STRATEGIES",
    "Policy",
    "Strategy",
    "WorkerSettings",
    "check_count",
    "check_seconds",
    "check_choice",
    "settings_of",
]

Policy = Literal["never", "on-failure", "always"]
"""When an ended worker is restarted: ``never``; ``on-failure`` (it failed or was
killed); ``always`` (also after it ended cleanly on its own). A worker that was
asked to stop (outcome ``stopped``) is never restarted."""

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
"""Which workers restart with a failed one: itself only; every worker; itself
and the workers added after it."""

POLICIES: tuple[str, ...] = get_args(Policy)
STRATEGIES: tuple[str, ...] = get_args(Strategy)


@dataclass(frozen=True)
class WorkerSettings:
    """One worker's supervision, resolved.

    Attributes:
        restart_policy: when it is restarted.
        start_within: seconds a worker that has never started may fail at
            every attempt before the server gives up (None: never).
        give_up_after: the same for a worker that did start once (None: never).
        max_restarts: its own restart intensity, with `restart_within` (None: no limit).
        restart_within: that intensity's window, in seconds.
        watchdog_timeout: seconds without a heartbeat before it is hung (None: no watchdog).
    """

    restart_policy: Policy
    start_within: float | None
    give_up_after: float | None
    max_restarts: int | None
    restart_within: float
    watchdog_timeout: float | None


def check_choice(owner: str, setting: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{owner}: {setting}={value!r} is not one of {', '.join(map(repr, choices))}")
    return str(value)


def check_count(owner: str, setting: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{owner}: {setting}={value!r} must be a whole number >= 0, or None for no limit")
    return value


def check_seconds(owner: str, setting: str, value: object, *, optional: bool = False, positive: bool = False) -> Any:
    if value is None and optional:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        bound = "> 0" if positive else ">= 0"
        alternative = ", or None to turn it off" if optional else ""
        raise ValueError(f"{owner}: {setting}={value!r} must be a number of seconds {bound}{alternative}")
    return float(value)


def _lookup(worker: Any, setting: str, default: object) -> object:
    options = worker.plugin_options
    if setting in options:
        return options[setting]
    return getattr(worker, setting, default)


def settings_of(
    worker: Any,
    *,
    restart_policy: Policy,
    start_within: float | None,
    give_up_after: float | None,
    max_restarts: int | None,
    restart_within: float,
    watchdog_timeout: float | None,
) -> WorkerSettings:
    """`worker`'s settings, its own overriding the defaults given; raises ValueError naming a bad one."""
    owner = f"worker {worker.name!r} ({type(worker).__name__})"
    policy = _lookup(worker, "restart_policy", restart_policy)
    timeout = _lookup(worker, "watchdog_timeout", watchdog_timeout)
    return WorkerSettings(
        restart_policy=check_choice(owner, "restart_policy", policy, POLICIES),  # type: ignore[arg-type]
        start_within=check_seconds(
            owner, "start_within", _lookup(worker, "start_within", start_within), optional=True, positive=True
        ),
        give_up_after=check_seconds(
            owner, "give_up_after", _lookup(worker, "give_up_after", give_up_after), optional=True, positive=True
        ),
        max_restarts=check_count(owner, "max_restarts", _lookup(worker, "max_restarts", max_restarts)),
        restart_within=check_seconds(
            owner, "restart_within", _lookup(worker, "restart_within", restart_within), positive=True
        ),
        watchdog_timeout=check_seconds(owner, "watchdog_timeout", timeout, optional=True, positive=True),
    )
