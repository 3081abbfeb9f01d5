"""What a worker's supervision is: its restart policy, when to give up on it, and its watchdog timeout.

Each setting is read with `spoc.settings.read`: from the worker's
``plugin_options`` (given to its constructor) first, then from its attribute
of the same name (a class attribute, as a rule), then from the `Supervisor`'s
default. Bad values are refused by the ``worker_check`` hook before any worker starts, with a message
that names the worker, the setting and its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from spoc import settings
from spoc.settings import read

__all__ = [
    "POLICIES",
    "STRATEGIES",
    "Policy",
    "Strategy",
    "WorkerSettings",
    "settings_of",
]

Policy = Literal["never", "on-failure", "always"]
"""When an ended worker is restarted: ``never``; ``on-failure`` (it failed or was
killed); ``always`` (also after it ended cleanly on its own). A worker that was
asked to stop (outcome ``stopped``) is never restarted."""

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
"""Which workers restart with a failed one: itself only; every worker; itself
and the workers added after it."""

POLICIES: tuple[Policy, ...] = get_args(Policy)
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)


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
    return WorkerSettings(
        restart_policy=settings.choice(
            worker, "restart_policy", read(worker, "restart_policy", restart_policy), POLICIES
        ),
        start_within=settings.seconds(
            worker, "start_within", read(worker, "start_within", start_within), none="to turn it off"
        ),
        give_up_after=settings.seconds(
            worker, "give_up_after", read(worker, "give_up_after", give_up_after), none="to turn it off"
        ),
        max_restarts=settings.whole(
            worker, "max_restarts", read(worker, "max_restarts", max_restarts), none="for no limit"
        ),
        restart_within=settings.seconds(worker, "restart_within", read(worker, "restart_within", restart_within)),
        watchdog_timeout=settings.seconds(
            worker, "watchdog_timeout", read(worker, "watchdog_timeout", watchdog_timeout), none="to turn it off"
        ),
    )
