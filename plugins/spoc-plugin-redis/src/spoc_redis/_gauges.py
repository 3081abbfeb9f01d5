"""The queue's gauges, read from Redis when the server's ``/metrics`` is scraped (with spoc-plugin-metrics).

For each stream and group the server's stream workers consume: the backlog
(entries not yet delivered), the pending jobs, the age of the oldest, and the
stream's dead letters: the figures of ``spoc redis stats``, never read in a
job's path. A Redis that does not answer within `SCRAPE_TIMEOUT` leaves that
stream's gauges out of the scrape, and says so in the log once per outage
(``streamworker_redis_connected`` shows it too).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import redis

from spoc import Server

from ._clients import shared_client
from ._queue import QueueError, stats
from ._settings import shown_url

if TYPE_CHECKING:
    from ._worker import StreamWorker

__all__ = ["SCRAPE_TIMEOUT", "read_queues_at_scrape"]

logger = logging.getLogger("spoc.redis")

SCRAPE_TIMEOUT = 2.0
"""Seconds a scrape waits for Redis to connect and to answer, per stream."""

StreamWorkers = Callable[[Server], list["StreamWorker"]]

_registered = False
_lock = threading.Lock()
_unreachable: set[str] = set()  # the URLs whose last scrape failed: logged once per outage


def read_queues_at_scrape(stream_workers: StreamWorkers) -> None:
    """Serve the queue's gauges on every server's ``/metrics`` (`stream_workers`: a server's stream workers),
    when spoc-plugin-metrics is installed. Idempotent."""
    global _registered
    try:
        from spoc_metrics import ScrapeGauge, ScrapeSample, read_at_scrape
    except ImportError:
        return
    with _lock:
        if _registered:
            return
        _registered = True
    backlog = ScrapeGauge(
        "streamworker_backlog", "Entries of a stream its group has not yet delivered.", ["stream", "group"]
    )
    pending = ScrapeGauge(
        "streamworker_pending", "Jobs delivered to a group's consumers and not yet acknowledged.", ["stream", "group"]
    )
    oldest = ScrapeGauge(
        "streamworker_oldest_pending_seconds",
        "Age of a group's oldest pending job (since it was added to the stream); 0 when none is pending.",
        ["stream", "group"],
    )
    dead = ScrapeGauge("streamworker_dead_letters", "Entries of a stream's dead-letter stream.", ["stream"])

    def samples(server: Server) -> Iterator[ScrapeSample]:
        queues = {}
        for worker in stream_workers(server):
            found = worker.stream_settings(server.name)
            queues[(found.redis_url, found.stream, found.group)] = found.dead_letter_stream
        for (url, stream, group), dead_stream in sorted(queues.items()):
            figures = _figures(url, stream, dead_stream, group)
            if figures is None:
                continue
            yield dead.sample(figures["dead_letters"], stream=stream)
            for found in figures["groups"]:
                yield backlog.sample(found["backlog"], stream=stream, group=group)
                yield pending.sample(found["pending"], stream=stream, group=group)
                yield oldest.sample(found["oldest_pending_seconds"] or 0.0, stream=stream, group=group)

    read_at_scrape(samples)


def _figures(url: str, stream: str, dead_stream: str, group: str) -> dict[str, Any] | None:
    """`stats` of the stream and group (no group's figures before the group exists: no consumer has started
    yet), or None when Redis does not answer."""
    client = shared_client(url, SCRAPE_TIMEOUT)
    try:
        try:
            figures = stats(client, stream, dead_stream, group)
        except QueueError:  # no stream or group yet: nothing waits for it
            figures = {"dead_letters": int(client.xlen(dead_stream)), "groups": []}
    except redis.RedisError as exc:
        with _lock:
            first = url not in _unreachable
            _unreachable.add(url)
        if first:
            logger.warning(
                "redis: the queue's gauges of stream %r are left out of the scrapes while Redis at %s does not "
                "answer: %s",
                stream,
                shown_url(url),
                exc,
            )
        return None
    with _lock:
        _unreachable.discard(url)
    return figures
