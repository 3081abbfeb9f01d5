"""The Redis side of one stream worker: read, acknowledge, retry, dead-letter and claim jobs, through outages.

Every call goes through `Consumer._call`, which rides out a lost connection:
one log line when Redis goes away, another every `STILL_AWAY_EVERY` seconds
while it stays away, one when it is back, retries with backoff in between (a
read gives up when the worker is asked to stop; an acknowledgement does not,
so that a job done is never done twice because its acknowledgement was lost).
At a worker's start, Redis is tried for `connect_within` seconds at most
(`RedisUnreachable`). A group that vanished (Redis restarted without
persistence, ``XGROUP DESTROY``) or a stream deleted under a blocked read
(``FLUSHDB``, ``DEL``) is created again, with one warning.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from spoc import log_extra

from ._enqueue import Mover
from ._settings import Settings, shown_url

__all__ = ["ENDED_FOR", "STILL_AWAY_EVERY", "Claim", "Consumer", "Job", "RedisUnreachable", "ended_key"]

logger = logging.getLogger("spoc.redis")

_OUTAGE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
_BACKOFF_FIRST, _BACKOFF_MOST = 0.1, 2.0  # at most: a stop during an outage waits this long
_READ_SLICE = 0.2
"""Seconds one blocking read waits at most: a stop takes effect within them, whatever ``block`` is."""
STILL_AWAY_EVERY = 30.0
"""Seconds between the log lines that say Redis is still away (the first comes when it goes)."""
_LAST_TRIES = 5.0
"""Seconds a stopping worker keeps trying to write what it owes Redis (an acknowledgement, a dead letter)
while Redis is away. Past them the job stays pending, and another consumer claims it."""


class RedisUnreachable(ConnectionError):
    """A stream worker could not reach Redis within `connect_within` seconds of its start: its setup fails."""

    __module__ = "spoc_redis"


@dataclass
class Job:
    """One job: an entry of the stream, as `StreamWorker.handle` gets it.

    Attributes:
        id: the entry's id in the stream (``"1700000000000-0"``).
        fields: the entry's fields, as strings.
        deliveries: how many times it has been handed to a consumer, this time included (1 on its first run).
    """

    id: str
    fields: dict[str, str] = field(default_factory=dict)
    deliveries: int = 1


def _gone(exc: redis.ResponseError) -> str | None:
    """What Redis's error says went missing under the consumer (with a ``{stream}`` field), or None for another
    error: ``NOGROUP`` (the group destroyed, or Redis restarted without its data), ``UNBLOCKED`` (the stream
    deleted, by ``DEL`` or ``FLUSHDB``, while the consumer's read waited on it), and the ``ERR`` that ``XINFO``
    and ``XGROUP`` answer on a stream that is gone."""
    text = str(exc)
    if text.startswith("NOGROUP"):
        return "the group of stream {stream} is gone (destroyed, or Redis lost its data)"
    if text.startswith("UNBLOCKED"):
        return "stream {stream} was deleted while it read (DEL, or FLUSHDB)"
    if text == "no such key" or "requires the key to exist" in text:  # XINFO, XGROUP: ERR, not NOGROUP
        return "stream {stream} is gone (DEL, or FLUSHDB)"
    return None


@dataclass
class Claim:
    """A job claimed from another consumer, that consumer's name, and how long it held the job idle (seconds)."""

    job: Job
    former: str
    idle: float = 0.0


ENDED_FOR = 86400
"""Seconds the note of how a consumer ended stays in Redis (`ended_key`): a day, to be read by a claim."""


def ended_key(settings: Settings) -> str:
    """The hash in which a server notes how its stream workers' consumers ended (consumer -> signal name)."""
    return f"spoc:{settings.stream}:{settings.group}:ended"


class Consumer:
    """One worker's consumer in its stream's group."""

    def __init__(
        self,
        settings: Settings,
        worker: str,
        running: Callable[[], bool],
        on_connection: Callable[[bool], None] = lambda connected: None,
    ) -> None:
        self.settings = settings
        self.worker = worker
        self._running = running
        self._on_connection = on_connection
        """Called with False at each failed try while Redis is away, and with True at each call that gets
        through (on the thread that made the call)."""
        self.client = redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_connect_timeout=5.0,
            socket_timeout=settings.block + 10.0,  # a read blocks `block` seconds; past that the link is dead
            health_check_interval=30,
        )
        self._lost = False
        self._lost_lock = threading.Lock()
        self._connected_once = False
        self._away_since = 0.0
        self._still_away_at = 0.0  # monotonic: when to say again that Redis is still away
        self.recovered = False
        """Redis was away: jobs delivered to this consumer may be pending while it never got them (a read whose
        reply was lost), to be taken back with `own_pending`."""
        self._claim_cursor = "-"

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ the calls

    def _call(
        self, what: str, call: Callable[[], Any], *, give_up_on_stop: bool, give_up_after: float | None = None
    ) -> Any:
        """`call()`'s reply (redis-py's are untyped), retried with backoff while Redis is away; None when the
        worker stopped meanwhile. `give_up_after`: seconds after which an outage raises `RedisUnreachable`."""
        delay = _BACKOFF_FIRST
        stopped_at: float | None = None
        began = time.monotonic()
        recreate = False
        while True:
            try:
                if recreate:
                    self.ensure_group()
                    recreate = False
                result = call()
            except redis.ResponseError as exc:
                gone = _gone(exc)
                if gone is None:
                    raise
                logger.warning(
                    "worker %r: %s; creating the stream and group %r again",
                    self.worker,
                    gone.format(stream=repr(self.settings.stream)),
                    self.settings.group,
                    extra=log_extra(self.worker),
                )
                recreate = True
                continue
            except _OUTAGE as exc:
                self._away(exc)
                if give_up_after is not None and time.monotonic() - began >= give_up_after:
                    raise RedisUnreachable(
                        f"could not reach Redis at {self._where()} "
                        f"({shown_url(self.settings.redis_url)}) within connect_within={give_up_after:g}s "
                        f"({type(exc).__name__}: {exc}); check redis_url or SPOC_REDIS_URL"
                    ) from None
                if not self._running():
                    stopped_at = time.monotonic() if stopped_at is None else stopped_at
                    if give_up_on_stop or time.monotonic() - stopped_at > _LAST_TRIES:
                        if not give_up_on_stop:
                            logger.error(
                                "worker %r: Redis is still away; %s given up on",
                                self.worker,
                                what,
                                extra=log_extra(self.worker),
                            )
                        return None
                time.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MOST)
                continue
            with self._lost_lock:
                back, self._lost = self._lost, False
                first, self._connected_once = not self._connected_once, True
            self._on_connection(True)  # at every call: the thread that saw Redis come back may not count it
            if back and not first:
                self.recovered = True
                logger.warning("worker %r: Redis is back (%s)", self.worker, what, extra=log_extra(self.worker))
            elif back:
                logger.warning(
                    "worker %r reached Redis at %s", self.worker, self._where(), extra=log_extra(self.worker)
                )
            return result

    def _away(self, exc: Exception) -> None:
        """A try failed because Redis is away: the first one of an outage, and one every `STILL_AWAY_EVERY`
        seconds after it, says so (the keeper and the acknowledger call too: one line for all)."""
        now = time.monotonic()
        with self._lost_lock:
            first, self._lost = not self._lost, True
            again = not first and now >= self._still_away_at
            if first or again:
                self._still_away_at = now + STILL_AWAY_EVERY
                if first:
                    self._away_since = now
        self._on_connection(False)
        if not (first or again):
            return
        where = f"Redis at {self._where()} ({shown_url(self.settings.redis_url)})"
        if first:
            lost = "lost" if self._connected_once else "cannot reach"
            logger.error(
                "worker %r %s %s (%s: %s); retrying",
                self.worker,
                lost,
                where,
                type(exc).__name__,
                exc,
                extra=log_extra(self.worker),
            )
        else:
            logger.error(
                "worker %r: %s is still away after %.0fs (%s: %s); retrying",
                self.worker,
                where,
                now - self._away_since,
                type(exc).__name__,
                exc,
                extra=log_extra(self.worker),
            )

    def _where(self) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"

    def ensure_group(self) -> None:
        """Create the stream and its group when missing; the group starts at the stream's first entry."""
        try:
            self.client.xgroup_create(self.settings.stream, self.settings.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def connect(self) -> None:
        """Reach Redis and make sure the stream and group exist, trying for `connect_within` seconds at most
        (`RedisUnreachable` then); returns early, not connected, when the worker is asked to stop meanwhile."""
        self._call("group", self.ensure_group, give_up_on_stop=True, give_up_after=self.settings.connect_within)

    def read(self, count: int, block: float) -> list[Job]:
        """Up to `count` new jobs, waiting up to `block` seconds for the first (less once the worker stops)."""
        s = self.settings
        deadline = time.monotonic() + block
        while True:
            wait = max(0.001, min(_READ_SLICE, deadline - time.monotonic()))
            reply = self._call(
                "read",
                functools.partial(
                    self.client.xreadgroup, s.group, s.consumer, {s.stream: ">"}, count, max(1, round(wait * 1000))
                ),
                give_up_on_stop=True,
            )
            if reply or not self._running() or time.monotonic() >= deadline:
                break
        jobs: list[Job] = []
        for _stream, entries in reply or []:
            jobs.extend(Job(entry_id, entry_fields or {}) for entry_id, entry_fields in entries)
        return jobs

    def move_due(self, mover: Mover) -> bool:
        """Move the stream's delayed jobs that are due into it (`Mover`); whether more may be due now."""
        return bool(self._call("delayed jobs", mover.move, give_up_on_stop=True))

    def ack(self, ids: list[str]) -> None:
        """Acknowledge the jobs `ids`, in one XACK."""
        s = self.settings
        self._call("acknowledgement", lambda: self.client.xack(s.stream, s.group, *ids), give_up_on_stop=False)

    def redeliver(self, job: Job) -> Job | None:
        """Hand a failed job to this consumer again, counted as a delivery; None when it is gone from the stream."""
        s = self.settings
        entries = self._call(
            "retry", lambda: self.client.xclaim(s.stream, s.group, s.consumer, 0, [job.id]), give_up_on_stop=False
        )
        for entry_id, entry_fields in entries or []:
            if entry_id == job.id and entry_fields is not None:
                return Job(job.id, entry_fields, job.deliveries + 1)
        return None

    def left_pending(self) -> list[Job]:
        """The jobs pending for this consumer, in order, as `Job` s without fields (`redeliver` hands one over):
        at a run's start, those its worker's last run ended holding (a restart, a reload, a kill)."""
        s = self.settings
        jobs: list[Job] = []
        start = "-"
        while True:
            page = self._call(
                "recovery",
                functools.partial(self.client.xpending_range, s.stream, s.group, start, "+", 1000, s.consumer),
                give_up_on_stop=True,
            )
            jobs.extend(Job(entry["message_id"], {}, int(entry["times_delivered"])) for entry in page or [])
            if not page or len(page) < 1000:
                return jobs
            start = "(" + str(page[-1]["message_id"])

    def own_pending(self, held: set[str]) -> list[Job]:
        """The jobs pending for this consumer that it does not hold (a read whose reply an outage lost), handed
        to it again: done now, not `claim_idle` later."""
        self.recovered = False
        lost = [self.redeliver(job) for job in self.left_pending() if job.id not in held]
        return [job for job in lost if job is not None]

    def keep(self, ids: list[Any]) -> None:
        """Tell the group this consumer still holds `ids` (their idle time starts again), so nobody claims them."""
        s = self.settings
        if ids:
            self._call(
                "keep",
                lambda: self.client.xclaim(s.stream, s.group, s.consumer, 0, ids, justid=True),
                give_up_on_stop=False,
            )

    def dead_letter(self, job: Job, exc: BaseException) -> None:
        """Move `job` with its error to the dead-letter stream and acknowledge it, both or neither."""
        s = self.settings
        entry = {
            **job.fields,
            "spoc_stream": s.stream,
            "spoc_job_id": job.id,
            "spoc_deliveries": str(job.deliveries),
            "spoc_error_type": type(exc).__name__,
            "spoc_error": str(exc),
            "spoc_traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        }

        def move() -> Any:
            pipe = self.client.pipeline(transaction=True)
            pipe.xadd(s.dead_letter_stream, entry)  # type: ignore[arg-type]
            pipe.xack(s.stream, s.group, job.id)
            return pipe.execute()

        self._call("dead letter", move, give_up_on_stop=False)

    def claim(self) -> Claim | None:
        """The next job another consumer has held longer than `claim_idle`, now this one's (its delivery counted),
        with the consumer it came from; None when there is none past the last one claimed (the pass over the
        group's pending jobs is done: consumers that left and hold nothing are then removed from the group).

        One job at a time: a claim counts a delivery only for the job about to be handled, so the jobs that a
        consumer read with a job that killed it are not blamed for its death (see `_worker`)."""
        s = self.settings
        idle = int(s.claim_idle * 1000)
        while True:
            pending = self._call(
                "claim",
                functools.partial(self.client.xpending_range, s.stream, s.group, self._claim_cursor, "+", 1, idle=idle),
                give_up_on_stop=True,
            )
            if not pending:
                if pending is not None:  # a whole pass over the group's pending jobs: a moment to tidy up
                    self._forget_departed()
                self._claim_cursor = "-"
                return None
            entry = pending[0]
            self._claim_cursor = "(" + entry["message_id"]
            claimed = self._call(
                "claim",
                functools.partial(self.client.xclaim, s.stream, s.group, s.consumer, idle, [entry["message_id"]]),
                give_up_on_stop=True,
            )
            for entry_id, entry_fields in claimed or []:
                if entry_id == entry["message_id"] and entry_fields is not None:
                    job = Job(entry_id, entry_fields, int(entry["times_delivered"]) + 1)
                    return Claim(job, str(entry["consumer"]), int(entry["time_since_delivered"]) / 1000)
            if claimed is None:  # the worker stopped meanwhile
                return None
            # Taken by another consumer first, done meanwhile, or deleted from the stream: the next one.

    def ended_consumer(self, consumer: str) -> str | None:
        """How `consumer` ended, when the server that ran it wrote it down (`RedisPlugin.worker_exited`):
        ``"SIGKILL"``."""
        s = self.settings
        return self._call(  # type: ignore[no-any-return]
            "claim", lambda: self.client.hget(ended_key(s), consumer), give_up_on_stop=True
        )

    def _forget_departed(self) -> None:
        s = self.settings
        consumers = self._call("claim", lambda: self.client.xinfo_consumers(s.stream, s.group), give_up_on_stop=True)
        for consumer in consumers or []:
            if consumer["name"] != s.consumer and consumer["pending"] == 0 and consumer["idle"] > s.claim_idle * 1000:
                self._call(
                    "claim",
                    functools.partial(self.client.xgroup_delconsumer, s.stream, s.group, consumer["name"]),
                    give_up_on_stop=True,
                )
