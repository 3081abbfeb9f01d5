"""What a worker's supervision is: its restart policy, when to give up on it, its watchdog timeout, and when to
recycle it.

Each setting is read with `spoc.settings.read`: from the worker's
``plugin_options`` (given to its constructor) first, then from its attribute
of the same name (a class attribute, as a rule), then from the `Supervisor`'s
default. Bad values are refused by the ``worker_check`` hook before any worker starts, with a message
that names the worker, the setting and its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from spoc import ThreadWorker, settings
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
        max_age: seconds an instance runs (from its start) before it is recycled (None: no limit).
        max_jobs: jobs an instance does (`spoc.AbstractWorker.job_done`) before it is recycled (None: no limit).
        max_memory: bytes of resident memory (RSS) a process worker's child may reach before it is recycled
            (None: no limit; never for a thread worker).
        recycle_jitter: how far each instance's limits are drawn from the settings, as a fraction (0.1: within
            ±10%), so that replicas do not recycle together.
    """

    restart_policy: Policy
    start_within: float | None
    give_up_after: float | None
    max_restarts: int | None
    restart_within: float
    watchdog_timeout: float | None
    max_age: float | None = None
    max_jobs: int | None = None
    max_memory: int | None = None
    recycle_jitter: float = 0.1

    @property
    def recycles(self) -> bool:
        """Whether any limit recycles the worker."""
        return self.max_age is not None or self.max_jobs is not None or self.max_memory is not None


def settings_of(
    worker: Any,
    *,
    restart_policy: Policy,
    start_within: float | None,
    give_up_after: float | None,
    max_restarts: int | None,
    restart_within: float,
    watchdog_timeout: float | None,
    max_age: float | None = None,
    max_jobs: int | None = None,
    max_memory: int | str | None = None,
    recycle_jitter: float = 0.1,
) -> WorkerSettings:
    """`worker`'s settings, its own overriding the defaults given; raises ValueError naming a bad one.

    A default ``max_memory`` applies to process workers only; a thread
    worker's own is refused: it shares the server's memory.
    """
    own_memory = settings.size(worker, "max_memory", read(worker, "max_memory", None), none="for no limit")
    if own_memory is not None and isinstance(worker, ThreadWorker):
        raise ValueError(
            f"{settings.owner(worker)}: max_memory={read(worker, 'max_memory')!r} cannot apply to a thread worker: "
            f"it shares the server's memory, so its own cannot be told apart nor freed by replacing it; make it a "
            f"ProcessWorker, or remove max_memory"
        )
    default_memory = settings.size("Supervisor", "max_memory", max_memory, none="for no limit")
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
        max_age=settings.seconds(worker, "max_age", read(worker, "max_age", max_age), none="for no limit"),
        max_jobs=settings.whole(worker, "max_jobs", read(worker, "max_jobs", max_jobs), least=1, none="for no limit"),
        max_memory=own_memory
        if own_memory is not None
        else (None if isinstance(worker, ThreadWorker) else default_memory),
        recycle_jitter=settings.number(
            worker, "recycle_jitter", read(worker, "recycle_jitter", recycle_jitter), most=0.5
        ),
    )
