"""Autoscaling a stream worker's replicas on its group's backlog (``autoscale = (min, max)``), in the server.

Every ``scale_interval`` seconds the server reads the group's backlog: the
entries not yet delivered to any consumer (``lag``) plus those delivered and
not yet acknowledged (``pending``). It adds one replica when the backlog per
running replica stayed above ``scale_up_backlog`` for two readings in a row,
and removes one after ``scale_down_idle`` seconds with no backlog, never
outside [min, max], through `Server.scale`: a replica scaled down drains (it
finishes the jobs it holds and acknowledges them), so no job is lost or done
twice. Each server decides for its own replicas only: with several hosts each
keeps its own count within its bounds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from spoc import AbstractWorker, Server, log_extra, settings, start_helper_thread

from ._settings import Settings

__all__ = ["AUTOSCALE_DEFAULTS", "Autoscale", "Autoscaler", "autoscale_of"]

logger = logging.getLogger("spoc.redis")

AUTOSCALE_DEFAULTS: dict[str, Any] = {
    "autoscale": None,
    "scale_interval": 2.0,
    "scale_up_backlog": 100,
    "scale_down_idle": 60.0,
}
"""The autoscaling settings of a stream worker, with their defaults (``autoscale`` None: off)."""

_READINGS_UP = 2
"""Readings in a row above ``scale_up_backlog`` per replica before one is added: a burst that one reading
catches and the next has worked off adds none."""

try:
    from spoc_metrics import Counter
except ImportError:  # the metrics plugin is not installed: the log line only
    _changes: Any = None
else:
    _changes = Counter(
        "streamworker_autoscale_total",
        "Replicas a stream worker's autoscaling added (direction=up) or removed (direction=down).",
        ["replicas_of", "direction"],
    )


@dataclass(frozen=True)
class Autoscale:
    """A stream worker's autoscaling settings, checked."""

    least: int
    most: int
    interval: float
    up_backlog: int
    down_idle: float


def autoscale_of(worker: AbstractWorker) -> Autoscale | None:
    """`worker`'s autoscaling settings, or None when ``autoscale`` is not set; ValueError naming a bad one."""

    def read(setting: str) -> Any:
        return settings.read(worker, setting, AUTOSCALE_DEFAULTS[setting])

    bounds = read("autoscale")
    if bounds is None:
        return None
    pair = tuple(bounds) if isinstance(bounds, tuple | list) else ()
    if (
        len(pair) != 2
        or any(isinstance(n, bool) or not isinstance(n, int) for n in pair)
        or not 0 <= pair[0] <= pair[1]
        or pair[1] < 1
    ):
        raise ValueError(
            f"{settings.owner(worker)}: autoscale={bounds!r} must be (min, max): two whole numbers of replicas, "
            f"0 <= min <= max and max >= 1, e.g. autoscale=(1, 4)"
        )
    return Autoscale(
        least=pair[0],
        most=pair[1],
        interval=settings.seconds(worker, "scale_interval", read("scale_interval")),
        up_backlog=settings.whole(worker, "scale_up_backlog", read("scale_up_backlog"), least=1),
        down_idle=settings.seconds(worker, "scale_down_idle", read("scale_down_idle"), zero=True),
    )


class Autoscaler:
    """The server's thread that scales the replicas of one stream worker (`name`) on its group's backlog."""

    def __init__(self, server: Server, name: str, stream: Settings, autoscale: Autoscale) -> None:
        self.server = server
        self.name = name
        self.stream = stream
        self.autoscale = autoscale
        self._stopped = threading.Event()
        self._high = 0  # readings in a row above the backlog per replica
        self._idle_since: float | None = None
        self._unreadable = False
        self._thread = start_helper_thread(self._loop, f"spoc-redis-autoscale:{name}")

    def stop(self) -> None:
        self._stopped.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _loop(self) -> None:
        client = redis.Redis.from_url(
            self.stream.redis_url, socket_timeout=5.0, socket_connect_timeout=5.0, decode_responses=True
        )
        try:
            while not self._stopped.wait(self.autoscale.interval):
                backlog = self._backlog(client)
                if backlog is not None:
                    self.decide(backlog, time.monotonic())
        finally:
            client.close()

    def _backlog(self, client: redis.Redis) -> int | None:
        """The group's entries not yet delivered plus those not yet acknowledged; None when Redis cannot say."""
        try:
            groups = client.xinfo_groups(self.stream.stream)
            group = next((g for g in groups if g["name"] == self.stream.group), None)
            if group is None:
                return 0
            lag = group.get("lag")
            if lag is None:  # Redis < 7, or it cannot tell after deletions: count what follows the last delivered
                lag = len(client.xrange(self.stream.stream, f"({group['last-delivered-id']}", "+") or ())
            backlog = int(lag) + int(group["pending"])
        except redis.ResponseError:  # no stream yet: nothing to do
            return 0
        except redis.RedisError as exc:
            if not self._unreadable:
                logger.warning(
                    "autoscaling of worker %r cannot read the backlog of stream %r (%s: %s); it keeps the count "
                    "until it can",
                    self.name,
                    self.stream.stream,
                    type(exc).__name__,
                    exc,
                    extra=log_extra(self.name, server=self.server.name),
                )
            self._unreadable = True
            return None
        self._unreadable = False
        return backlog

    def decide(self, backlog: int, now: float) -> None:
        """Scale by one replica, or not, on one reading of the backlog."""
        scale = self.autoscale
        count = self.server.replica_counts().get(self.name)
        if count is None:
            return
        desired, running = count
        if desired < scale.least or desired > scale.most:
            self._change(min(max(desired, scale.least), scale.most), desired, backlog, "outside its bounds")
            return
        per_replica = backlog / max(running, 1)
        self._high = self._high + 1 if per_replica > scale.up_backlog or (backlog and not desired) else 0
        if backlog:
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = now
        if self._high >= _READINGS_UP and desired < scale.most:
            self._high = 0
            self._change(desired + 1, desired, backlog, f"{per_replica:.0f} per running replica > {scale.up_backlog}")
        elif self._idle_since is not None and now - self._idle_since >= scale.down_idle and desired > scale.least:
            self._idle_since = now  # the next one goes after another idle period
            self._change(desired - 1, desired, backlog, f"no backlog for {scale.down_idle:g}s")

    def _change(self, count: int, desired: int, backlog: int, why: str) -> None:
        direction = "up" if count > desired else "down"
        try:
            self.server.scale(self.name, count)
        except Exception as exc:  # a shutdown began: nothing more to scale
            logger.info(
                "autoscaling of worker %r stops: %s",
                self.name,
                exc,
                extra=log_extra(self.name, server=self.server.name),
            )
            self._stopped.set()
            return
        logger.info(
            "autoscaling worker %r %s from %d to %d: backlog %d on stream %r (%s)",
            self.name,
            direction,
            desired,
            count,
            backlog,
            self.stream.stream,
            why,
            extra=log_extra(self.name, server=self.server.name),
        )
        if _changes is not None:
            _changes.labels(replicas_of=self.name, direction=direction).inc(abs(count - desired))
