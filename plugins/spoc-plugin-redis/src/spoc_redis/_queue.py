"""A stream's queue as an operator sees it (``spoc redis``): its figures, its dead letters, and their fixes."""

from __future__ import annotations

from typing import Any

import redis

__all__ = ["DEAD_LETTER_FIELDS", "QueueError", "dead_letters", "drop", "requeue", "stats"]

DEAD_LETTER_FIELDS = (
    "spoc_stream",
    "spoc_job_id",
    "spoc_deliveries",
    "spoc_error_type",
    "spoc_error",
    "spoc_traceback",
)
"""The fields a dead letter adds to its job's own (`Consumer.dead_letter`)."""

_REQUEUE = """
local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #entry == 0 then return false end
local added = {}
for i = 2, #ARGV do added[ARGV[i]] = true end
local fields, own = entry[1][2], {}
for i = 1, #fields, 2 do
  if not added[fields[i]] then
    table.insert(own, fields[i])
    table.insert(own, fields[i + 1])
  end
end
if #own == 0 then return redis.error_reply('the dead letter ' .. ARGV[1] .. ' holds no field of its job') end
local id = redis.call('XADD', KEYS[2], '*', unpack(own))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
"""
"""Move the dead letter ARGV[1] of KEYS[1] back to the stream KEYS[2] as a new job with its own fields (those
not among ARGV[2...]), in one step; false when it is gone."""


class QueueError(Exception):
    """What cannot be done, and what to do instead."""


def _now_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _id_ms(entry_id: str) -> int:
    return int(entry_id.split("-")[0])


def _page(client: redis.Redis, stream: str, start: str) -> list[tuple[str, dict[str, str]]]:
    """Up to 1000 entries of `stream` from `start` on (a client that decodes replies: strings)."""
    page: Any = client.xrange(stream, start, "+", count=1000)
    return list(page or [])


def _after(client: redis.Redis, stream: str, last: str) -> int:
    """The entries of `stream` after id `last`, counted (when Redis cannot tell a group's lag)."""
    count, start = 0, f"({last}"
    while True:
        page = _page(client, stream, start)
        count += len(page)
        if len(page) < 1000:
            return count
        start = f"({page[-1][0]}"


def stats(client: redis.Redis, stream: str, dead_stream: str, group: str | None = None) -> dict[str, Any]:
    """The figures of `stream`: its length, its dead letters, and per group (or only `group`) the backlog (entries
    not yet delivered), the pending jobs, the age of the oldest, and each consumer's pending jobs and idle time."""
    if not client.exists(stream):
        raise QueueError(f"there is no stream {stream!r} in this Redis (check its name, or --redis-url)")
    groups = client.xinfo_groups(stream)
    if group is not None:
        named = [found for found in groups if found["name"] == group]
        if not named:
            names = ", ".join(repr(found["name"]) for found in groups) or "none"
            raise QueueError(f"stream {stream!r} has no group {group!r} (its groups: {names})")
        groups = named
    now = _now_ms(client)
    figures = []
    for found in groups:
        name = found["name"]
        backlog = found.get("lag")
        if backlog is None:  # Redis cannot tell after entries were deleted; counted instead
            backlog = _after(client, stream, found["last-delivered-id"])
        oldest = None
        if found["pending"]:
            summary = client.xpending(stream, name)
            oldest = max(0.0, (now - _id_ms(summary["min"])) / 1000)
        consumers = [
            {"name": consumer["name"], "pending": consumer["pending"], "idle_seconds": consumer["idle"] / 1000}
            for consumer in client.xinfo_consumers(stream, name)
        ]
        figures.append(
            {
                "group": name,
                "backlog": int(backlog),
                "pending": int(found["pending"]),
                "oldest_pending_seconds": oldest,
                "consumers": consumers,
            }
        )
    return {
        "stream": stream,
        "length": int(client.xlen(stream)),
        "dead_letter_stream": dead_stream,
        "dead_letters": int(client.xlen(dead_stream)),
        "groups": figures,
    }


def dead_letters(client: redis.Redis, dead_stream: str) -> list[dict[str, Any]]:
    """Every dead letter of `dead_stream`, oldest first: its id, the job's id, stream, deliveries, error and
    traceback, and the job's own fields."""
    letters = []
    start = "-"
    while True:
        page = _page(client, dead_stream, start)
        for entry_id, fields in page:
            letters.append(
                {
                    "id": entry_id,
                    "job": fields.get("spoc_job_id"),
                    "stream": fields.get("spoc_stream"),
                    "deliveries": int(fields.get("spoc_deliveries", 0)),
                    "error_type": fields.get("spoc_error_type"),
                    "error": fields.get("spoc_error"),
                    "traceback": fields.get("spoc_traceback"),
                    "fields": {key: value for key, value in fields.items() if key not in DEAD_LETTER_FIELDS},
                }
            )
        if len(page) < 1000:
            return letters
        start = f"({page[-1][0]}"


def _chosen(client: redis.Redis, stream: str, dead_stream: str, ids: list[str]) -> list[str]:
    """The dead letters `ids` names (their ids, or their jobs' ids; ``all``), each checked to be there and to be
    of `stream`; nothing is done unless all are."""
    letters = dead_letters(client, dead_stream)
    if ids == ["all"]:
        chosen = letters
    else:
        by_id = {letter["id"]: letter for letter in letters} | {letter["job"]: letter for letter in letters}
        unknown = [given for given in ids if given not in by_id]
        if unknown:
            raise QueueError(
                f"no dead letter {', '.join(unknown)} in {dead_stream!r} (spoc redis dead {stream} lists them); "
                f"nothing was done"
            )
        chosen = list({by_id[given]["id"]: by_id[given] for given in ids}.values())
    foreign = [letter["id"] for letter in chosen if letter["stream"] not in (None, stream)]
    if foreign:
        raise QueueError(
            f"dead letter {', '.join(foreign)} of {dead_stream!r} is a job of another stream, not {stream!r}; "
            f"nothing was done"
        )
    return [letter["id"] for letter in chosen]


def requeue(client: redis.Redis, stream: str, dead_stream: str, ids: list[str]) -> dict[str, str | None]:
    """Move the dead letters `ids` (or ``all``) back to `stream` as new jobs (deliveries start again), each taken
    out of `dead_stream` in the same step; the new id of each, None for one gone meanwhile."""
    script = client.register_script(_REQUEUE)
    moved: dict[str, str | None] = {}
    for dead_id in _chosen(client, stream, dead_stream, ids):
        new_id = script(keys=[dead_stream, stream], args=[dead_id, *DEAD_LETTER_FIELDS])
        moved[dead_id] = str(new_id) if new_id else None
    return moved


def drop(client: redis.Redis, stream: str, dead_stream: str, ids: list[str]) -> dict[str, str | None]:
    """Delete the dead letters `ids` (or ``all``); for each, its id, or None for one gone meanwhile (as
    `requeue`)."""
    chosen = _chosen(client, stream, dead_stream, ids)
    return {dead_id: dead_id if client.xdel(dead_stream, dead_id) else None for dead_id in chosen}
