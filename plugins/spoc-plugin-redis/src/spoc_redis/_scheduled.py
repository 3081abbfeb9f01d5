"""ScheduledWorker: a spoc worker whose main() calls `tick(at)` on a schedule, once across every server that runs it."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import redis

from spoc import log_extra, settings

from ._cron import Cron, CronError, Every, Schedule, last_missed
from ._settings import redis_url_or_default, shown_url

__all__ = ["ScheduleSettings", "ScheduledWorker"]

logger = logging.getLogger("spoc.redis")

MIN_LOCK = 60.0
"""Seconds a tick's key lives at least (else two intervals): long after every server has tried that tick."""

_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local last = tonumber(redis.call('GET', KEYS[2]) or '-1')
  if tonumber(ARGV[3]) > last then
    redis.call('SET', KEYS[2], ARGV[3])
  end
  return 1
end
return 0
"""
"""Claim a tick (KEYS[1], the tick's key; ARGV[1] who claims it, ARGV[2] how long the key lives, in ms) and note
it as the schedule's last tick run (KEYS[2], ARGV[3]: the tick's time), in one step: a tick is run by whoever
sets its key first, and the last tick run is never one that was not."""


@dataclass(frozen=True)
class ScheduleSettings:
    """A scheduled worker's settings, checked (see `ScheduledWorker`)."""

    schedule: Schedule
    catch_up: bool
    redis_url: str
    schedule_key: str

    def tick_key(self, at: float) -> str:
        return f"spoc:{{{self.schedule_key}}}:tick:{round(at * 1000)}"

    @property
    def last_key(self) -> str:
        return f"spoc:{{{self.schedule_key}}}:last"


class ScheduledWorker:
    """Mix in before `ThreadWorker` or `ProcessWorker`: ``class Report(ScheduledWorker, ThreadWorker)``.

    Set ``every = 300`` (seconds) or ``cron = "*/5 * * * *"`` (five fields,
    UTC) and write ``tick(self, at)`` (plain or ``async def``; `at` is the
    tick's time, an aware UTC ``datetime``); `ScheduledWorker` supplies
    `main()`. Every server that runs the worker (on one host or many, sharing
    one Redis) tries each tick when it is due; the first to claim its key in
    Redis runs it, the others skip it, so a tick runs once in all, even when a
    server dies in the middle of one (its key stays). An ``every`` schedule
    ticks at the multiples of its period since the epoch, the same instants on
    every host.

    A tick missed while no server ran the worker is run once at start with
    ``catch_up = True`` (the last one missed), and skipped otherwise. A tick
    that raises is logged with its traceback and the schedule goes on; a tick
    that lasts past the next ones leaves those to the other servers (or skips
    them, alone). A tick Redis could not be asked about is skipped: the first
    of an outage is logged, and the count when Redis answers again.

    Settings (class attributes, or ``plugin_options`` of the same name):
    ``every``, ``cron``, ``catch_up`` (default False), ``redis_url`` (else
    ``SPOC_REDIS_URL``, else ``redis://localhost:6379/0``) and
    ``schedule_key`` (the schedule's name in Redis, shared by the servers
    that run it; default the worker's name, a replica's included).
    """

    every: float | None = None
    cron: str | None = None
    catch_up: bool = False
    redis_url: str | None = None
    schedule_key: str | None = None

    name: str
    base_name: str
    server_name: str | None
    server_pid: int | None
    is_running: bool
    wait: Callable[[float | None], bool]
    sleep: Callable[[float], Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "main", None) in (ScheduledWorker.main, ScheduledWorker._main_async):
            tick_is_async = inspect.iscoroutinefunction(getattr(cls, "tick", None))
            cls.main = ScheduledWorker._main_async if tick_is_async else ScheduledWorker.main  # type: ignore[method-assign,assignment]

    def tick(self, at: datetime) -> Any:
        """One tick of the schedule, at `at` (UTC); write your own."""
        raise NotImplementedError

    def schedule_settings(self) -> ScheduleSettings:
        """This worker's settings, checked; raises ValueError naming the worker and the setting (and the cron
        field) at fault, TypeError when it has no tick()."""
        if type(self).tick is ScheduledWorker.tick:
            raise TypeError(
                f"worker {self.name!r} ({type(self).__name__}) defines no tick(self, at): write one (plain or "
                f"async def)"
            )
        me: Any = self  # an AbstractWorker too, once mixed in
        every, cron, owner = settings.read(me, "every"), settings.read(me, "cron"), settings.owner(me)
        if (every is None) == (cron is None):
            raise ValueError(
                f"{owner}: set every (seconds, e.g. every = 300) or cron (e.g. cron = '*/5 * * * *'), "
                f"{'not both' if every is not None else 'one of them'}"
            )
        schedule: Schedule
        if every is not None:
            schedule = Every(settings.seconds(me, "every", every))
        else:
            try:
                schedule = Cron.parse(cron)
            except CronError as exc:
                raise ValueError(f"{owner}: {exc}") from None
        catch_up = settings.read(me, "catch_up", False)
        if not isinstance(catch_up, bool):
            raise ValueError(f"{owner}: catch_up={catch_up!r} must be True or False")
        url = redis_url_or_default(settings.read(me, "redis_url"))
        key = settings.read(me, "schedule_key", None) or self.name
        return ScheduleSettings(
            schedule, catch_up, settings.text(me, "redis_url", url), settings.text(me, "schedule_key", key)
        )

    # ------------------------------------------------------------------ main, plain

    def main(self) -> None:
        run = _Ticks(self)
        try:
            due = run.catch_up(time.time())
            if due is not None:
                run.claim_and_run(due, self._tick_now, missed=True)
            due = run.next_due(time.time())
            while not self.wait(max(0.0, due - time.time())):
                run.claim_and_run(due, self._tick_now)
                due = run.next_due(max(due, time.time()))
        finally:
            run.close()

    def _tick_now(self, at: datetime) -> None:
        self.tick(at)

    # ------------------------------------------------------------------ main, async

    async def _main_async(self) -> None:
        run = _Ticks(self)
        loop = asyncio.get_running_loop()
        try:
            due = await loop.run_in_executor(None, run.catch_up, time.time())
            if due is not None:
                await self._claim_and_run_async(run, due, missed=True)
            due = run.next_due(time.time())
            while not await self.sleep(max(0.0, due - time.time())):
                await self._claim_and_run_async(run, due)
                due = run.next_due(max(due, time.time()))
        finally:
            run.close()

    async def _claim_and_run_async(self, run: _Ticks, due: float, missed: bool = False) -> None:
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(None, run.claim, due):
            if missed:
                run.caught_up(due)
            at = datetime.fromtimestamp(due, timezone.utc)
            try:
                await self.tick(at)
            except Exception:
                run.failed(at)


class _Ticks:
    """One run of a scheduled worker's main(): its settings, its Redis client, and whose claims are its."""

    def __init__(self, worker: ScheduledWorker) -> None:
        self.worker = worker
        self.settings = worker.schedule_settings()
        self.client = redis.Redis.from_url(self.settings.redis_url, socket_timeout=5.0, socket_connect_timeout=5.0)
        self.script = self.client.register_script(_CLAIM)
        self.holder = f"{socket.gethostname()}/{worker.server_name or '-'}/{worker.name}/{os.getpid()}"
        self.away_since: float | None = None  # Redis did not answer since: said once, and when it answers again
        self.skipped = 0

    def next_due(self, after: float) -> float:
        return self.settings.schedule.next_after(after)

    def catch_up(self, now: float) -> float | None:
        """The tick to run at start with ``catch_up``: the last one missed since the schedule's last tick run.
        None when none was missed, or without ``catch_up`` (a tick missed is then logged as skipped), or when
        Redis cannot be asked (logged)."""
        try:
            last = self.client.get(self.settings.last_key)
        except redis.RedisError as exc:
            if self.settings.catch_up:  # else the first tick says it
                self._unreachable("the catch-up at start", exc)
            return None
        if last is None:  # never run anywhere: nothing was missed
            return None
        missed = last_missed(self.settings.schedule, float(last), now)
        if missed is not None and not self.settings.catch_up:
            name = self.worker.name
            logger.info(
                "worker %r: the tick at %s was missed while no server ran schedule %r; skipped (set catch_up = "
                "True to run it at start)",
                name,
                _iso(missed),
                self.settings.schedule_key,
                extra=log_extra(name),
            )
            return None
        return missed

    def caught_up(self, missed: float) -> None:
        name = self.worker.name
        logger.info(
            "worker %r: runs the tick at %s, missed while no server ran schedule %r (catch_up)",
            name,
            _iso(missed),
            self.settings.schedule_key,
            extra=log_extra(name),
        )

    def claim(self, due: float) -> bool:
        """Whether this run claimed the tick `due` (False: another server has it, or Redis did not answer)."""
        schedule = self.settings.schedule
        lives = max(MIN_LOCK, 2 * (schedule.next_after(due) - due))
        try:
            claimed = self.script(
                keys=[self.settings.tick_key(due), self.settings.last_key],
                args=[self.holder, round(lives * 1000), repr(due)],
            )
        except redis.RedisError as exc:
            self._unreachable(f"the tick at {_iso(due)}", exc)
            return False
        self._reached()
        return bool(claimed)

    def claim_and_run(self, due: float, tick: Callable[[datetime], None], missed: bool = False) -> None:
        if self.claim(due):
            if missed:
                self.caught_up(due)
            at = datetime.fromtimestamp(due, timezone.utc)
            try:
                tick(at)
            except Exception:
                self.failed(at)

    def failed(self, at: datetime) -> None:
        name = self.worker.name
        logger.exception(
            "worker %r: its tick at %s raised; the schedule goes on", name, at.isoformat(), extra=log_extra(name)
        )

    def _unreachable(self, what: str, exc: redis.RedisError) -> None:
        """Say the first tick skipped in an outage (the others are counted, and said when Redis answers)."""
        self.skipped += 1
        if self.away_since is not None:
            return
        self.away_since = time.monotonic()
        name = self.worker.name
        logger.warning(
            "worker %r skipped %s: Redis at %s did not answer (%s: %s); the ticks are skipped until it does",
            name,
            what,
            shown_url(self.settings.redis_url),
            type(exc).__name__,
            exc,
            extra=log_extra(name),
        )

    def _reached(self) -> None:
        if self.away_since is None:
            return
        name = self.worker.name
        logger.warning(
            "worker %r reaches Redis again after %.1fs; %d tick(s) were skipped meanwhile",
            name,
            time.monotonic() - self.away_since,
            self.skipped,
            extra=log_extra(name),
        )
        self.away_since, self.skipped = None, 0

    def close(self) -> None:
        self.client.close()


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).isoformat()
