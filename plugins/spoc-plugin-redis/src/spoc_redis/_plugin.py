"""The plugin the ``spoc`` entry point names: it checks stream workers' settings before they start, and writes
down what a stream worker that was killed can no longer say."""

from __future__ import annotations

import collections
import logging
import sys
from typing import TYPE_CHECKING, Any

from spoc import AbstractWorker, Server, StashKey, WorkerExit, hookimpl, log_extra

from ._topics import HELD_TOPIC, RECORD_TOPIC, STUCK_TOPIC

if TYPE_CHECKING:
    from ._autoscale import Autoscaler
    from ._scheduled import ScheduledWorker
    from ._worker import StreamWorker

__all__ = ["RedisPlugin", "plugin"]

logger = logging.getLogger("spoc.redis")

NOTE_TIMEOUT = 1.0
"""Seconds the server waits for Redis to take a killed worker's acknowledgements, to connect and to answer."""

HELD_SHOWN = 20
"""Job ids a log line names at most (the others are counted)."""

DONE_KEPT = 10_000
"""Ids of the jobs a stream worker's run reported done that the server keeps, the latest: at most the jobs done
while one acknowledgement was on its way are unacknowledged when the worker is killed."""

_DONE = StashKey[collections.deque[str]]()
"""In a stream worker's stash: the latest jobs its run reported done (`DONE_KEPT`)."""
_HELD = StashKey[dict[str, None]]()
"""In a stream worker's stash: the jobs its run took and has not finished, in order."""
_AUTOSCALERS = StashKey[list["Autoscaler"]]()
"""In the server's stash: the autoscaler of each stream worker with ``autoscale`` set."""
AUTOSCALER_JOIN = 6.0
"""Seconds the server waits at its end for an autoscaler in the middle of a Redis call (its timeout is 5 s)."""


def _stream_worker(worker: AbstractWorker) -> StreamWorker | None:
    """`worker`, if it is a `StreamWorker`.

    Start latency: without importing redis (50 ms of imports at every start of a program that has the plugin
    installed and no stream worker): no worker is a stream worker before its class's module is imported.
    """
    module = sys.modules.get("spoc_redis._worker")
    return worker if module is not None and isinstance(worker, module.StreamWorker) else None


def _scheduled_worker(worker: AbstractWorker) -> ScheduledWorker | None:
    """`worker`, if it is a `ScheduledWorker` (without importing redis, as `_stream_worker`)."""
    module = sys.modules.get("spoc_redis._scheduled")
    return worker if module is not None and isinstance(worker, module.ScheduledWorker) else None


def _stream_workers(server: Server) -> list[StreamWorker]:
    """The stream workers `server` runs now."""
    return [found for worker in server.workers if (found := _stream_worker(worker)) is not None]


class RedisPlugin:
    """Refuses a `StreamWorker` or a `ScheduledWorker` with a bad setting before any worker starts, naming the
    worker, the setting and its value. Any other worker is left alone.

    When a stream worker ends in the middle of jobs (killed, cut off), the
    server names them (it hears of each job a worker takes: `HELD_TOPIC`).
    When a stream worker is killed (a job that segfaults, the OOM killer, a
    SIGKILL), the server acknowledges the jobs the worker reported done whose
    acknowledgement may have died with it, so none is done twice, and notes in
    Redis how its consumer ended (``spoc:<stream>:<group>:ended``, a hash of
    consumer -> signal, kept a day), for the error of a job dead-lettered
    because it killed its consumers.

    With spoc-plugin-metrics installed, the server's ``/metrics`` shows the
    queues of its stream workers, read from Redis at each scrape (`_gauges`).
    """

    name = "redis"

    @hookimpl
    def worker_check(self, server: Server, worker: AbstractWorker) -> None:
        stream_worker = _stream_worker(worker)
        if stream_worker is not None:
            from ._autoscale import autoscale_of
            from ._gauges import read_queues_at_scrape

            stream_worker.stream_settings(server.name)
            autoscale_of(worker)
            read_queues_at_scrape(_stream_workers)  # the queue's gauges, with spoc-plugin-metrics
        scheduled_worker = _scheduled_worker(worker)
        if scheduled_worker is not None:
            scheduled_worker.schedule_settings()

    @hookimpl
    def server_started(self, server: Server) -> None:
        """Start an autoscaler for each stream worker with ``autoscale`` set (one per worker, not per replica)."""
        first: dict[str, AbstractWorker] = {}
        for worker in server.workers:
            if _stream_worker(worker) is not None:
                first.setdefault(worker.base_name, worker)
        if not first:
            return
        from ._autoscale import Autoscaler, autoscale_of

        scalers = []
        for name, worker in first.items():
            autoscale, stream_worker = autoscale_of(worker), _stream_worker(worker)
            if autoscale is not None and stream_worker is not None:
                scalers.append(Autoscaler(server, name, stream_worker.stream_settings(server.name), autoscale))
        if scalers:
            server.stash[_AUTOSCALERS] = scalers

    @hookimpl
    def server_stopping(self, server: Server) -> None:
        for scaler in server.stash.get(_AUTOSCALERS, None) or ():
            scaler.stop()

    @hookimpl
    def server_stopped(self, server: Server) -> None:
        for scaler in server.stash.get(_AUTOSCALERS, None) or ():
            scaler.stop()
            scaler.join(AUTOSCALER_JOIN)

    @hookimpl
    def worker_record(self, server: Server, worker: AbstractWorker, topic: str, data: dict[str, Any]) -> None:
        if topic == STUCK_TOPIC:  # a job of its child would not return from its time limit: a fresh child
            server.recycle_worker(worker, "time_limit")
            return
        if topic == HELD_TOPIC:
            worker.stash.setdefault(_HELD, {}).update(dict.fromkeys(map(str, data.get("jobs", ()))))
            return
        if topic != RECORD_TOPIC or data.get("outcome") not in ("done", "dead") or "job" not in data:
            return
        job = str(data["job"])
        held = worker.stash.get(_HELD, None)
        if held is not None:
            held.pop(job, None)
        if data["outcome"] == "done":
            done = worker.stash.get(_DONE, None)
            if done is None:  # once per run, not a deque built and dropped for every job done
                done = worker.stash[_DONE] = collections.deque(maxlen=DONE_KEPT)
            done.append(job)

    @hookimpl(tryfirst=True)  # before a supervisor's worker_exited restarts the worker
    def worker_exited(self, server: Server, worker: AbstractWorker, exit_info: WorkerExit) -> None:
        done = worker.stash.get(_DONE, None)
        held = list(worker.stash.get(_HELD, None) or ())
        killed = exit_info.outcome == "killed" and exit_info.signal is not None
        stream_worker = _stream_worker(worker)
        if stream_worker is None or not (killed or (held and not exit_info.ok)):
            return
        import redis

        from ._consumer import ENDED_FOR, ended_key

        settings = stream_worker.stream_settings(server.name)
        if held and not exit_info.ok:
            more = len(held) - HELD_SHOWN
            shown = ", ".join(held[:HELD_SHOWN]) + (f" and {more} more" if more > 0 else "")
            logger.error(
                "worker %r ended (%s) in the middle of %d job(s) of stream %r: %s; they stay pending, taken back "
                "at once by its next run, else claimed by another consumer after claim_idle",
                worker.name,
                f"killed by {exit_info.signal}" if exit_info.signal else exit_info.outcome,
                len(held),
                settings.stream,
                shown,
                extra=log_extra(worker),
            )
        if not killed:
            return
        how = exit_info.signal
        # Here, not on a thread of its own (the monitor waits for one round trip, at most NOTE_TIMEOUT twice in an
        # outage): correctness. The worker's next run is the same consumer and takes back at once the jobs this
        # one held (`_Run.inherited`), so the jobs it did must be acknowledged before that run starts.
        try:
            with redis.Redis.from_url(
                settings.redis_url, socket_timeout=NOTE_TIMEOUT, socket_connect_timeout=NOTE_TIMEOUT
            ) as r:
                pipe = r.pipeline(transaction=False)
                if done:
                    pipe.xack(settings.stream, settings.group, *done)
                pipe.hset(ended_key(settings), settings.consumer, how)
                pipe.expire(ended_key(settings), ENDED_FOR)
                pipe.execute()
        except redis.RedisError as exc:
            logger.warning(
                "worker %r was killed by %s; its jobs done could not be acknowledged for it (%s: %s): its next run "
                "may do them again",
                worker.name,
                how,
                type(exc).__name__,
                exc,
                extra=log_extra(worker.name),
            )


plugin = RedisPlugin()
