"""Adding jobs: `enqueue` (and `enqueue_async`) adds one to a stream now, or once it is due.

A job for later waits in a sorted set beside its stream (`delayed_key`),
scored by when it is due in milliseconds since the epoch: Redis's clock plus
the `delay`, or the `at` given. Every stream worker of the stream moves the
jobs that are due into it, every `MOVE_EVERY` seconds (`Mover`), with a Lua
script that takes each out of the set and adds it to the stream in one step:
whichever consumer of whichever host gets there first moves it, and each
delayed job is added exactly once.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import uuid
from collections.abc import Mapping

import redis
import redis.asyncio

from ._clients import shared_client
from ._settings import redis_url_or_default

__all__ = ["DELAYED_PREFIX", "MOVE_BATCH", "MOVE_EVERY", "Mover", "delayed_key", "enqueue", "enqueue_async"]

logger = logging.getLogger("spoc.redis")

DELAYED_PREFIX = "delayed-"
"""How the id `enqueue` returns for a job for later begins; the job gets its stream id when it is moved."""
MOVE_EVERY = 0.25
"""Seconds between two looks of a stream worker for delayed jobs that are due: each is moved within a second."""
MOVE_BATCH = 500
"""Delayed jobs moved by one script call at most (a call blocks Redis meanwhile); more are moved at once after."""

_LATER = """
redis.replicate_commands()
local due = tonumber(ARGV[1])
if ARGV[3] == 'delay' then
  local now = redis.call('TIME')
  due = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + due
end
redis.call('ZADD', KEYS[1], due, ARGV[2])
return due
"""
"""Add a job (ARGV[2]) to the delayed set KEYS[1], due at ARGV[1] ms since the epoch, or (ARGV[3] == 'delay')
ARGV[1] ms after Redis's clock now: one clock for every producer and every consumer."""

_MOVE = """
redis.replicate_commands()
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved, bad = 0, {}
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local ok, job = pcall(cjson.decode, member)
  local added = false
  if ok and type(job) == 'table' and type(job[2]) == 'table' and #job[2] >= 2 then
    added = type(redis.pcall('XADD', KEYS[2], '*', unpack(job[2]))) == 'string'
  end
  if added then moved = moved + 1 else table.insert(bad, member) end
end
return {moved, #due, bad}
"""
"""Move the jobs of the delayed set KEYS[1] that are due by Redis's clock (ARGV[1] at most) into the stream
KEYS[2], each taken out of the set and added in one step. Returns the jobs moved, the jobs looked at, and each
one that could not be added (not written by `enqueue`), which is taken out of the set all the same."""


def delayed_key(stream: str) -> str:
    """The sorted set in which `stream`'s jobs for later wait. Its name holds the stream's in braces, a Redis
    Cluster hash tag: the set and the stream are in one slot, as the script that moves jobs needs."""
    return f"spoc:{{{stream}}}:delayed"


def enqueue(
    stream: str,
    fields: Mapping[str, str | int | float],
    *,
    delay: float | None = None,
    at: datetime.datetime | None = None,
    redis_url: str | None = None,
) -> str:
    """Add a job to `stream` now and return its id in the stream; or, with `delay` (seconds) or `at` (an aware
    datetime), once it is due, and return the id it waits under (``delayed-...``).

    A job for later is moved into the stream by the stream's workers within a
    second of its time, while any of them runs. `fields` are the job's
    (``job.fields``): names and values as strings (an int or a float is
    written as its ``str()``). `redis_url`: else ``SPOC_REDIS_URL``, else
    ``redis://localhost:6379/0``, as for a stream worker; the connection is
    kept for the next call, per URL.

    Raises:
        TypeError, ValueError: a bad argument, named, with what to give instead.
        redis.RedisError: Redis could not be reached, or refused the job.
    """
    job = _Job(stream, fields, delay, at)
    client = shared_client(_url(redis_url))
    if job.later is None:
        return str(client.xadd(stream, job.fields))  # type: ignore[arg-type]
    member, due, how = job.later
    client.register_script(_LATER)(keys=[delayed_key(stream)], args=[due, member, how])
    return job.token


async def enqueue_async(
    stream: str,
    fields: Mapping[str, str | int | float],
    *,
    delay: float | None = None,
    at: datetime.datetime | None = None,
    redis_url: str | None = None,
) -> str:
    """`enqueue` for async code: the same arguments and result, on a connection of the call's own."""
    job = _Job(stream, fields, delay, at)
    client = redis.asyncio.Redis.from_url(_url(redis_url), decode_responses=True)
    try:
        if job.later is None:
            return str(await client.xadd(stream, job.fields))  # type: ignore[arg-type]
        member, due, how = job.later
        await client.register_script(_LATER)(keys=[delayed_key(stream)], args=[due, member, how])
        return job.token
    finally:
        await client.aclose()


class _Job:
    """`enqueue`'s arguments, checked: `fields` as strings; `later`: (the set's member, due, "delay" or "at")."""

    def __init__(self, stream: object, fields: object, delay: object, at: object) -> None:
        if not isinstance(stream, str) or not stream:
            raise TypeError(f"enqueue: stream is the name of a stream, a non-empty str; got {stream!r}")
        if not isinstance(fields, Mapping) or not fields:
            raise TypeError(
                f"enqueue: fields is a non-empty dict of the job's fields, such as {{'order': '42'}}; got {fields!r}"
            )
        self.fields: dict[str, str] = {}
        for name, value in fields.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"enqueue: a field's name is a non-empty str; got {name!r}")
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise TypeError(
                    f"enqueue: field {name!r} is {type(value).__name__} {value!r}; a field's value is a str, int or "
                    f"float (encode anything else, with json.dumps say)"
                )
            self.fields[name] = str(value)
        self.token = DELAYED_PREFIX + uuid.uuid4().hex if delay is not None or at is not None else ""
        """The id a job for later waits under (none for a job for now)."""
        self.later: tuple[str, int, str] | None = None
        if delay is not None and at is not None:
            raise TypeError("enqueue: give delay (seconds from now) or at (a datetime), not both")
        if delay is not None:
            if isinstance(delay, bool) or not isinstance(delay, int | float) or not math.isfinite(delay) or delay < 0:
                raise ValueError(f"enqueue: delay is a number of seconds >= 0; got {delay!r}")
            self.later = (self._member(), round(delay * 1000), "delay")
        elif at is not None:
            if not isinstance(at, datetime.datetime):
                raise TypeError(f"enqueue: at is a datetime; got {type(at).__name__} {at!r}")
            if at.tzinfo is None or at.utcoffset() is None:
                raise ValueError(
                    f"enqueue: at={at.isoformat()} has no time zone; give an aware datetime, such as "
                    f"datetime.now(timezone.utc) + timedelta(minutes=5)"
                )
            self.later = (self._member(), round(at.timestamp() * 1000), "at")

    def _member(self) -> str:
        """The job as it waits in the delayed set: its id, then its fields as a flat list of names and values."""
        return json.dumps([self.token, [text for pair in self.fields.items() for text in pair]], separators=(",", ":"))


def _url(redis_url: str | None) -> str:
    if redis_url is not None and (not isinstance(redis_url, str) or not redis_url):
        raise TypeError(f"enqueue: redis_url is a redis:// URL; got {redis_url!r}")
    return redis_url_or_default(redis_url)


class Mover:
    """Moves a stream's jobs that are due from its delayed set into it, through a stream worker's connection."""

    def __init__(self, client: redis.Redis, stream: str) -> None:
        self._script = client.register_script(_MOVE)
        self._keys = [delayed_key(stream), stream]
        self._stream = stream

    def move(self) -> bool:
        """Move the jobs that are due (`MOVE_BATCH` at most); whether more may be due (the batch was full)."""
        _moved, looked_at, bad = self._script(keys=self._keys, args=[MOVE_BATCH])
        for member in bad:
            logger.error(
                "a delayed job of stream %r is not one enqueue() wrote, or the stream refused it; it was taken out "
                "of %s and dropped: %s",
                self._stream,
                self._keys[0],
                member,
            )
        return int(looked_at) >= MOVE_BATCH
