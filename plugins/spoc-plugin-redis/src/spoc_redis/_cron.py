"""When a `ScheduledWorker` ticks: every so many seconds, or at the times of a five-field cron expression (UTC).

A schedule's ticks are instants (Unix seconds), the same on every host: an
``every`` schedule's are the multiples of its period since the epoch, a
cron schedule's the minutes its expression matches. Each tick is thereby one
key in Redis for all the servers that run the worker.

Cron: ``minute hour day-of-month month day-of-week``, each ``*``, a
number, a range ``a-b``, a step ``*/n`` or ``a-b/n`` or ``a/n``, or a list
of them (``1,15,30-40``); months and days of the week also by their English
names (``jan``, ``mon``), Sunday 0 or 7. As in Vixie cron, when both day
fields are restricted a day matches either.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["Cron", "CronError", "Every", "Schedule", "last_missed"]

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_NAMES = {
    "month": {name.lower(): n for n, name in enumerate(calendar.month_abbr) if name},
    "day-of-week": {name.lower(): (n + 1) % 7 for n, name in enumerate(calendar.day_abbr)},
}
_HORIZON_DAYS = 366 * 8
"""How far ahead a cron expression's next tick is looked for: one that matches no date in it (30 February)
is refused."""


class CronError(ValueError):
    """A cron expression that cannot be read; its message names the field and what is wrong."""


@dataclass(frozen=True)
class Every:
    """Ticks every `seconds`, at the multiples of it since the epoch (the same instants on every host)."""

    seconds: float

    def next_after(self, when: float) -> float:
        """The first tick strictly after `when`."""
        return (math.floor(when / self.seconds) + 1) * self.seconds

    def last_at_or_before(self, when: float) -> float:
        """The last tick at or before `when`."""
        return math.floor(when / self.seconds) * self.seconds

    def __str__(self) -> str:
        return f"every {self.seconds:g}s"


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron expression, in UTC; `parse` reads one."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 Sunday .. 6 Saturday
    any_day: bool  # day-of-month is *
    any_weekday: bool  # day-of-week is *

    @classmethod
    def parse(cls, expression: object) -> Cron:
        if not isinstance(expression, str):
            raise CronError(f"cron must be a string of five fields such as '*/5 * * * *', got {expression!r}")
        fields = expression.split()
        if len(fields) != 5:
            raise CronError(
                f"cron {expression!r} has {len(fields)} field(s); it takes five: minute hour day-of-month month "
                f"day-of-week (UTC), e.g. '*/5 * * * *'"
            )
        values = [
            _field(expression, text, name, low, high) for text, (name, low, high) in zip(fields, _FIELDS, strict=True)
        ]
        weekdays = frozenset(day % 7 for day in values[4])
        cron = cls(
            expression,
            values[0],
            values[1],
            values[2],
            values[3],
            weekdays,
            fields[2].startswith("*"),
            fields[4].startswith("*"),
        )
        if cron._next_day(datetime(2000, 1, 1, tzinfo=timezone.utc)) is None:  # 2000-2008: each date, each weekday
            raise CronError(f"cron {expression!r} matches no date (day-of-month and month never meet)")
        return cron

    def _day_matches(self, day: datetime) -> bool:
        in_month = day.day in self.days
        in_week = (day.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:  # one of them is *: both must match (the * one always does)
            return in_month and in_week
        return in_month or in_week

    def _next_day(self, start: datetime) -> datetime | None:
        """Midnight of the first day from `start`'s (included) that the expression matches."""
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(_HORIZON_DAYS):
            if day.month in self.months and self._day_matches(day):
                return day
            day += timedelta(days=1)
        return None

    def next_after(self, when: float) -> float:
        """The first tick strictly after `when`."""
        moment = datetime.fromtimestamp(math.floor(when / 60) * 60 + 60, timezone.utc)
        while True:
            day = self._next_day(moment)
            if day is None:  # refused by `parse`
                raise CronError(f"cron {self.expression!r} matches no date")
            if day > moment:
                moment = day
            for hour in sorted(self.hours):
                if hour < moment.hour:
                    continue
                for minute in sorted(self.minutes):
                    if hour == moment.hour and minute < moment.minute:
                        continue
                    return moment.replace(hour=hour, minute=minute).timestamp()
            moment = day + timedelta(days=1)

    def __str__(self) -> str:
        return f"cron {self.expression!r}"


Schedule = Every | Cron


def last_missed(schedule: Schedule, since: float, now: float) -> float | None:
    """The last tick after `since` and at or before `now` (the one a catch-up runs), or None when none is."""
    tick = schedule.next_after(since)
    if tick > now:
        return None
    if isinstance(schedule, Every):
        return schedule.last_at_or_before(now)
    while (following := schedule.next_after(tick)) <= now:  # a minute's cron missed for a week: 10,080 steps
        tick = following
    return tick


def _field(expression: str, text: str, name: str, low: int, high: int) -> frozenset[int]:
    chosen: set[int] = set()
    for part in text.split(","):
        chosen |= _part(expression, part, name, low, high)
    return frozenset(chosen)


def _part(expression: str, part: str, name: str, low: int, high: int) -> set[int]:
    where = f"cron {expression!r}: the {name} field's {part!r}"
    span, _, step_text = part.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"{where} has a step that is not a whole number > 0")
        step = int(step_text)
    if span == "*":
        first, last = low, high
    else:
        first_text, dash, last_text = span.partition("-")
        first = _value(where, first_text, name, low, high)
        last = _value(where, last_text, name, low, high) if dash else (high if step_text else first)
        if last < first:
            raise CronError(f"{where} is a range that runs backwards")
    return set(range(first, last + 1, step))


def _value(where: str, text: str, name: str, low: int, high: int) -> int:
    named = _NAMES.get(name, {}).get(text.lower())
    if named is not None:
        return named
    if not text.isdigit():
        names = f", or a name such as {next(iter(_NAMES[name]))!r}" if name in _NAMES else ""
        raise CronError(f"{where} is not a number{names}")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{where}: {value} is out of {low}-{high}")
    return value
