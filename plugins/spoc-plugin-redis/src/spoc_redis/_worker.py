"""StreamWorker: a spoc worker whose main() consumes a Redis stream, one `handle(job)` per entry."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from spoc import log_extra, start_helper_thread

from ._consumer import STILL_AWAY_EVERY, Claim, Consumer, Job, RedisUnreachable
from ._enqueue import MOVE_EVERY, Mover
from ._limit import JobTimeLimit, Limiter, limit_error, run_limited
from ._metrics import ConnectedGauge, count_job
from ._settings import Settings, settings_of
from ._topics import HELD_TOPIC, RECORD_TOPIC, STUCK_TOPIC

__all__ = ["HELD_TOPIC", "RECORD_TOPIC", "KilledItsConsumer", "StreamWorker"]

logger = logging.getLogger("spoc.redis")


CLAIM_EVERY = 1.0
"""Seconds between two looks for jobs a dead consumer held, at most (``claim_idle / 2`` when shorter): a dead
host's jobs are done within about ``claim_idle`` + 1 s of its death, not + ``claim_idle / 2``. One
``XPENDING`` a second for each consumer."""


ACK_LINGER = 0.002
"""Seconds the acknowledger waits, once a job is done, for the other jobs the worker holds to be done too, so that
one ``XACK`` takes them all (throughput: acknowledging whatever was done the moment it woke, about one ``XACK``
per job, held four process workers to 7,500 no-op jobs/s on two cores; with this, 10,000). At most this much later
a job done counts (`spoc.AbstractWorker.job_done`); a kill loses nothing of it (the server heard it was done)."""


class KilledItsConsumer(RuntimeError):
    """What a job is dead-lettered with when its consumers died while handling it (a segfault, the OOM killer, a
    SIGKILL) until it was claimed more than `max_deliveries` times."""


class StreamWorker:
    """Mix in before `ThreadWorker` or `ProcessWorker`: ``class Resize(StreamWorker, ProcessWorker)``.

    Write ``handle(self, job)`` (plain or ``async def``); `StreamWorker`
    supplies `main()`. A job is acknowledged only after `handle` returned; one
    that raised is retried, with backoff (`retry_backoff`), until it has been
    delivered `max_deliveries` times, then moved with its error to
    `dead_letter_stream` and acknowledged; an error that `dead_on` names, or
    that `retry_on` (when set) does not, is moved there at once. On stop, the
    worker reads no new job and finishes the ones it holds. Jobs another consumer has held longer than `claim_idle`
    (its host died) are claimed and done here. Every worker of a stream also
    moves the stream's jobs for later (`spoc_redis.enqueue` with ``delay`` or
    ``at``) into it once they are due. Each job done counts once its
    acknowledgement is in (`spoc.AbstractWorker.job_done`): spoc-plugin-restart's
    ``max_jobs`` recycles the worker after so many. A ``handle()`` still
    running past `time_limit` is interrupted (`JobTimeLimit`, see `_limit`),
    and its delivery fails like any other.

    Each job's outcome is sent to the server's plugins as a record
    (`RECORD_TOPIC`, with ``stream``, ``outcome``: ``done``, ``failed``,
    ``retried``, ``dead`` or ``claimed``, ``job``: the job's id, and
    ``seconds`` where it ran). Jobs are claimed one at a time, and a
    claimed job runs alone, so that a job that kills its consumer is the
    only one dead-lettered for it (`KilledItsConsumer`).

    After the class's ``setup()``, the worker reaches Redis and makes sure its
    group exists (for `connect_within` seconds at most, `RedisUnreachable`
    then): it has started only once it can take jobs.

    Settings (class attributes, or ``plugin_options`` of the same name):
    ``stream``, ``group``, ``redis_url``, ``consumer``, ``batch``, ``block``,
    ``concurrency``, ``claim_idle``, ``connect_within``, ``max_deliveries``,
    ``dead_letter_stream``, ``retry_backoff``, ``retry_on``, ``dead_on``,
    ``time_limit``, ``time_limit_grace``, and for autoscaling its replicas on
    the backlog ``autoscale`` (``(min, max)``), ``scale_interval``,
    ``scale_up_backlog``, ``scale_down_idle``; see the docs page for each
    one's default.
    """

    stream: str = ""
    group: str = ""
    redis_url: str | None = None
    consumer: str | None = None
    batch: int = 10
    block: float = 1.0
    concurrency: int = 1
    claim_idle: float = 60.0
    connect_within: float = 10.0
    max_deliveries: int = 5
    dead_letter_stream: str | None = None
    retry_backoff: tuple[float, float] = (0.5, 30.0)
    retry_on: type[Exception] | tuple[type[Exception], ...] | None = None
    dead_on: type[Exception] | tuple[type[Exception], ...] = ()
    time_limit: float | None = None
    time_limit_grace: float = 5.0
    autoscale: tuple[int, int] | None = None
    scale_interval: float = 2.0
    scale_up_backlog: int = 100
    scale_down_idle: float = 60.0
    _spoc_redis_consumer: Consumer | None = None
    """Connected by setup(), for main()'s run to take."""

    # What the worker base class provides (the mixin is always combined with one):
    name: str
    base_name: str
    replica: int
    plugin_options: Any
    server_name: str | None
    server_pid: int | None
    is_running: bool
    send_record: Callable[..., None]
    job_done: Callable[[], int]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "main", None) in (StreamWorker.main, StreamWorker._main_async):
            cls.main = StreamWorker._main_async if _handle_is_async(cls) else StreamWorker.main  # type: ignore[method-assign,assignment]
        setup = getattr(cls, "setup", None)
        if setup is not None and not getattr(setup, "_spoc_redis_connects", False):
            cls.setup = _connecting(setup)  # type: ignore[attr-defined]

    def _connect(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """After the user's setup(): reach Redis and make sure the group exists, so that the worker has
        started (its ``startup`` event) only once it can take jobs; `RedisUnreachable` fails the setup."""
        if self._spoc_redis_consumer is not None:
            return
        settings = self.stream_settings()
        gauge = ConnectedGauge(loop)
        consumer = Consumer(settings, self.name, lambda: bool(self.is_running), gauge.set)
        try:
            consumer.connect()
        except RedisUnreachable as exc:  # its message says it all: not the frames of this plugin's calls
            consumer.close()
            raise exc.with_traceback(None) from None
        except BaseException:
            consumer.close()
            raise
        self._spoc_redis_consumer = consumer

    def handle(self, job: Job) -> Any:
        """Do one job. Return (anything) when it is done; raise to have it retried."""
        raise NotImplementedError(f"{type(self).__name__} must define handle(self, job)")

    def stream_settings(self, server: str | None = None) -> Settings:
        """This worker's settings, resolved; raises ValueError naming a bad one (TypeError: no handle()).

        `server`: the name of the server it runs in, part of its default consumer name with the server's pid
        (both known once the server has checked the worker, also in its child)."""
        if type(self).handle is StreamWorker.handle:
            raise TypeError(
                f"worker {self.name!r} ({type(self).__name__}) defines no handle(self, job): write one (plain or "
                f"async def); a mixin that defines it goes before StreamWorker among the bases"
            )
        return settings_of(
            self, server=server or self.server_name, handle_is_async=_handle_is_async(type(self)), pid=self.server_pid
        )

    # ------------------------------------------------------------------ main, plain

    def main(self) -> None:
        run = _Run(self)
        try:
            while self.is_running:
                for job in run.next_jobs(run.settings.batch):
                    run.process(job, self.handle)
            for job in run.last_retries():
                run.process(job, self.handle)
        finally:
            run.close()

    # ------------------------------------------------------------------ main, async

    async def _main_async(self) -> None:
        run = _Run(self)
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        try:
            while self.is_running:
                free = run.settings.concurrency - len(tasks)
                if free == 0 or (tasks and run.claim_due()):  # a claimed job runs alone (`_Run.alone`)
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                jobs = await loop.run_in_executor(None, run.next_jobs, min(free, run.settings.batch))
                if run.alone:
                    await run.process_async(jobs[0], self.handle)
                    continue
                for job in jobs:
                    task = loop.create_task(run.process_async(job, self.handle))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks)  # the jobs in flight finish: a stop loses none and redoes none
            last = [
                loop.create_task(run.process_async(job, self.handle))
                for job in await loop.run_in_executor(None, run.last_retries)
            ]
            if last:
                await asyncio.wait(last)
        finally:
            await loop.run_in_executor(None, run.close)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _handle_is_async(cls: type) -> bool:
    return inspect.iscoroutinefunction(getattr(cls, "handle", None))


def _connecting(setup: Callable[..., Any]) -> Callable[..., Any]:
    """`setup`, then `StreamWorker._connect` (a class's own setup, or the one it inherits: each is wrapped once)."""
    if inspect.iscoroutinefunction(setup):

        @functools.wraps(setup)
        async def setup_async(self: StreamWorker) -> None:
            await setup(self)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._connect, loop)

        setup_async._spoc_redis_connects = True  # type: ignore[attr-defined]
        return setup_async

    @functools.wraps(setup)
    def setup_then_connect(self: StreamWorker) -> Any:
        result = setup(self)
        self._connect()
        return result

    setup_then_connect._spoc_redis_connects = True  # type: ignore[attr-defined]
    return setup_then_connect


class _Run:
    """One run of a stream worker's main(): its consumer, the jobs it holds, and the threads that keep them,
    acknowledge them, and move the stream's delayed jobs that are due."""

    def __init__(self, worker: StreamWorker) -> None:
        self.worker = worker
        worker._connect(_running_loop())  # done by its setup(), unless a setup() of its own overrides that
        assert worker._spoc_redis_consumer is not None
        self.consumer = worker._spoc_redis_consumer
        worker._spoc_redis_consumer = None
        self.settings = self.consumer.settings
        self.held: set[str] = set()
        """The jobs delivered to this consumer and not yet acknowledged (or dead-lettered)."""
        self.done: list[str] = []  # jobs done, for the acknowledger
        self.retries: list[tuple[float, Job]] = []  # (when, job), jobs that failed and wait for another try
        self.lock = threading.Lock()
        self.next_claim = 0.0
        self.alone = False
        """Whether the jobs `next_jobs` returned last are a claimed job, to be handled with no other in flight.

        Its consumer died, or hung, holding it: it may be the job that killed
        that consumer. Claimed one at a time and handled alone, each job taken
        back after a death has a delivery counted only when it is handed to
        `handle()` by itself, so only a job that kills its consumer again and
        again reaches `max_deliveries`: the jobs read with it, or in flight
        beside it, are done, not dead-lettered for it."""
        self.closing = threading.Event()
        self.has_done = threading.Condition(self.lock)
        self.inherited = self.consumer.left_pending()
        """The jobs this worker's last run in this server held when it ended (the same consumer: see `Settings`),
        taken back at once, one at a time and each alone, as claimed jobs are: it may have been killed by one."""
        self.keeper = start_helper_thread(self._keep, f"spoc-redis-keeper:{worker.name}")
        self.acknowledger = start_helper_thread(self._acknowledge, f"spoc-redis-acks:{worker.name}")
        self.mover = start_helper_thread(self._move, f"spoc-redis-mover:{worker.name}")
        limit = self.settings.time_limit
        self.limiter = None  # an async handle() is cancelled instead (`process_async`)
        if limit is not None and not _handle_is_async(type(worker)):
            self.limiter = Limiter(worker, limit, self.settings.time_limit_grace, self._stuck)

    def close(self) -> None:
        """Once main() has done its last job: acknowledge every job done, and end the threads."""
        with self.lock:
            self.closing.set()
            self.has_done.notify()
        if self.limiter is not None:
            self.limiter.close()
        self.acknowledger.join()
        self.keeper.join()
        self.mover.join()
        self.consumer.close()

    def _move(self) -> None:
        """Every `MOVE_EVERY` seconds, move the stream's delayed jobs that are due into it (`spoc_redis.enqueue`):
        every consumer of the stream looks, on every host, and the first to look moves each job."""
        mover = Mover(self.consumer.client, self.settings.stream)
        wait = MOVE_EVERY
        while not self.closing.wait(wait):
            wait = MOVE_EVERY
            try:
                while self.consumer.move_due(mover) and not self.closing.is_set():
                    pass  # a full batch: more may be due, moved at once
            except Exception:  # not an outage (those are ridden out): scripts refused, say; said, and tried again
                logger.exception(
                    "worker %r: moving the delayed jobs of stream %r that are due failed; trying again in %gs",
                    self.worker.name,
                    self.settings.stream,
                    STILL_AWAY_EVERY,
                    extra=log_extra(self.worker.name),
                )
                wait = STILL_AWAY_EVERY

    def _acknowledge(self) -> None:
        """Acknowledge the jobs done, on a thread of its own: the worker takes its next job at once, and the jobs
        of a batch go together in one XACK (`ACK_LINGER`; throughput: waiting for a round trip per job held a
        no-op handle() to 0.74-0.87x a raw loop that does; with this, 1.9x). A job stays held until its
        acknowledgement is in, so the keeper keeps it and a consumer back from an outage does not take it back."""
        while True:
            with self.lock:
                while not self.done and not self.closing.is_set():
                    self.has_done.wait()
                self._linger()
                ids, self.done = self.done, []
            if not ids:
                return  # closing, and every job done is acknowledged
            self._ack(ids)

    def _ack(self, ids: list[str]) -> None:
        """Acknowledge the jobs `ids`, done; each then counts (spoc-plugin-restart's max_jobs) and is no longer
        held."""
        try:
            self.consumer.ack(ids)
        except Exception:  # not an outage (those are ridden out): the jobs stay pending, for a claim
            logger.exception(
                "worker %r: acknowledging jobs %s failed",
                self.worker.name,
                ", ".join(ids),
                extra=log_extra(self.worker.name),
            )
        else:
            for _ in ids:
                self.worker.job_done()
        with self.lock:
            self.held.difference_update(ids)

    def _linger(self) -> None:
        """With the lock held and a job done: wait until every job held is done, or `ACK_LINGER` at most."""
        until = time.monotonic() + ACK_LINGER
        while not self._all_held_done() and not self.closing.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return
            self.has_done.wait(left)

    def _all_held_done(self) -> bool:
        """With the lock held: whether every job this consumer holds is done (a batch ended: acknowledge it)."""
        return len(self.done) >= len(self.held)

    def _keep(self) -> None:
        """Every third of `claim_idle`, tell the group this consumer still holds its jobs: a long job is never
        claimed from a live consumer, while a dead one's are claimed once `claim_idle` has passed."""
        while not self.closing.wait(self.settings.claim_idle / 3):
            with self.lock:
                ids = sorted(self.held)
            try:
                self.consumer.keep(ids)
            except Exception:
                logger.exception(
                    "worker %r: keeping its jobs failed", self.worker.name, extra=log_extra(self.worker.name)
                )

    def next_jobs(self, count: int) -> list[Job]:
        """The next jobs to do: after an outage the ones it lost, else a retry that is due, else a claimed job when a
        claim is due, else new ones (`alone` says whether it is a claimed job)."""
        now = time.monotonic()
        self.alone = False
        if self.inherited:
            return self._retake(self.inherited.pop(0))
        if self.consumer.recovered:
            with self.lock:
                held = set(self.held)
            lost = self.consumer.own_pending(held)
            self._hold(lost)
            if lost:
                return lost
        with self.lock:
            due = [job for when, job in self.retries if when <= now]
            if due:
                job = due[0]
                self.retries = [(when, j) for when, j in self.retries if j is not job]
        if due:
            again = self.consumer.redeliver(job)
            if again is None:
                with self.lock:
                    self.held.discard(job.id)
                return []
            self._report("retried", again)
            return [again]
        if self.claim_due(now):
            claim = self.consumer.claim()
            # While claims find jobs (a dead host's backlog), the pass over the pending jobs goes on at once.
            self.next_claim = now if claim is not None else now + min(self.settings.claim_idle / 2, CLAIM_EVERY)
            if claim is not None:
                self._took_over(claim)
                self._report("claimed", claim.job)
                return self._alone(claim)
        block = self.settings.block
        with self.lock:
            if self.retries:
                block = max(0.001, min(block, min(when for when, _ in self.retries) - now))
        jobs = self.consumer.read(count, block)
        self._hold(jobs)
        return jobs

    def _hold(self, jobs: list[Job]) -> None:
        """`jobs` are this consumer's now: held until acknowledged; the server hears of them (`HELD_TOPIC`), to
        name them if the worker ends holding them, killed at the deadline say."""
        if not jobs:
            return
        with self.lock:
            self.held.update(job.id for job in jobs)
        self.worker.send_record(HELD_TOPIC, stream=self.settings.stream, jobs=[job.id for job in jobs])

    def _retake(self, left: Job) -> list[Job]:
        """A job the last run left pending, handed to this one (a delivery counted), as a claimed job is."""
        job = self.consumer.redeliver(left)
        if job is None:  # done, or deleted from the stream, meanwhile
            return []
        return self._alone(Claim(job, self.settings.consumer))

    def _took_over(self, claim: Claim) -> None:
        job = claim.job
        logger.warning(
            "worker %r took over job %s of stream %r from consumer %r, which held it %.1fs without acknowledging "
            "it (claim_idle=%g: it died or hung); delivery %d",
            self.worker.name,
            job.id,
            self.settings.stream,
            claim.former,
            claim.idle,
            self.settings.claim_idle,
            job.deliveries,
            extra=self._job_extra(job, from_consumer=claim.former),
        )

    def _job_extra(self, job: Job, **fields: Any) -> dict[str, Any]:
        """The ``extra=`` of a log record about `job`: its worker, and the job, stream and delivery as fields."""
        return {
            **log_extra(self.worker.name),
            "job": job.id,
            "stream": self.settings.stream,
            "delivery": job.deliveries,
            **fields,
        }

    def _alone(self, claim: Claim) -> list[Job]:
        """A job taken from a consumer that ended holding it: handled alone, or dead-lettered when the consumers
        it was delivered to kept dying on it."""
        job = claim.job
        self._hold([job])
        if job.deliveries > self.settings.max_deliveries:  # its consumers died on it, every time
            self._dead(job, self._killer(claim))
            return []
        self.alone = True
        return [job]

    def claim_due(self, now: float | None = None) -> bool:
        """Whether `next_jobs` claims (or takes back a job its last run left) now: the async main() first lets the
        jobs in flight finish (see `alone`)."""
        return bool(self.inherited) or (time.monotonic() if now is None else now) >= self.next_claim

    def _killer(self, claim: Claim) -> KilledItsConsumer:
        """The error a claimed job past `max_deliveries` is dead-lettered with."""
        job = claim.job
        how = self.consumer.ended_consumer(claim.former)
        logger.error(
            "worker %r: job %s of stream %r was delivered %d times and never done: its consumer %r %s while "
            "handling it; it moves to %r",
            self.worker.name,
            job.id,
            self.settings.stream,
            job.deliveries,
            claim.former,
            f"was killed by {how}" if how else "died",
            self.settings.dead_letter_stream,
            extra=self._job_extra(job, from_consumer=claim.former),
        )
        return KilledItsConsumer(
            f"killed its consumer: delivered {job.deliveries} times and never done; the last consumer to hold it, "
            f"{claim.former!r}, {f'was killed by {how}' if how else 'died'} while handling it"
        )

    def last_retries(self) -> list[Job]:
        """On stop: the jobs waiting for a retry, redelivered now for a last try before the worker ends (one
        that fails again stays pending, for a consumer that runs to claim)."""
        with self.lock:
            waiting, self.retries = [job for _, job in self.retries], []
        jobs = []
        for job in waiting:
            again = self.consumer.redeliver(job)
            if again is not None:
                self._report("retried", again)
                jobs.append(again)
        return jobs

    def process(self, job: Job, handle: Callable[[Job], Any]) -> None:
        began = time.monotonic()
        limiter = self.limiter
        error: Exception | None = None
        try:
            if limiter is not None:
                limiter.running(job)
            handle(job)
        except Exception as exc:
            error = exc
        if limiter is not None:
            if limiter.ended():
                return  # given up past its grace, and counted (`_stuck`)
            if isinstance(error, JobTimeLimit) and not error.args:  # the limiter's: say which limit
                error = limit_error(limiter.limit).with_traceback(error.__traceback__)
        if error is not None:
            self._failed(job, error, time.monotonic() - began)
        else:
            self._done(job, time.monotonic() - began)

    async def process_async(self, job: Job, handle: Callable[[Job], Any]) -> None:
        loop = asyncio.get_running_loop()
        began = time.monotonic()
        limit = self.settings.time_limit
        try:
            await (handle(job) if limit is None else run_limited(handle(job), limit))
        except Exception as exc:
            await loop.run_in_executor(None, self._failed, job, exc, time.monotonic() - began)
        else:
            await loop.run_in_executor(None, self._done, job, time.monotonic() - began)

    def _done(self, job: Job, seconds: float) -> None:
        with self.lock:
            self.done.append(job.id)
            if len(self.done) == 1 or self._all_held_done():  # what the acknowledger waits for (`_linger`)
                self.has_done.notify()
        self._report("done", job, seconds)

    def _report(self, outcome: str, job: Job, seconds: float | None = None) -> None:
        """Tell the server's plugins (a record) and, when spoc-plugin-metrics is installed, its metrics."""
        data: dict[str, Any] = {"stream": self.settings.stream, "outcome": outcome, "job": job.id}
        if seconds is not None:
            data["seconds"] = seconds
        self.worker.send_record(RECORD_TOPIC, **data)
        count_job(self.settings.stream, outcome, seconds)

    def _failed(self, job: Job, exc: Exception, seconds: float) -> None:
        s = self.settings
        at_once = s.dead_at_once(exc)
        last = at_once is not None or job.deliveries >= s.max_deliveries
        first, most = s.retry_backoff
        delay = min(most, first * 2.0 ** min(job.deliveries - 1, 64))
        if at_once == "dead_on":
            fate = f"; dead_on names {type(exc).__name__}: it moves to {s.dead_letter_stream!r} at once"
        elif at_once == "retry_on":
            fate = f"; retry_on does not name {type(exc).__name__}: it moves to {s.dead_letter_stream!r} at once"
        elif last:
            fate = f"; it moves to {s.dead_letter_stream!r}"
        else:
            fate = f"; it will be retried in {delay:g}s"
        logger.error(
            "worker %r: job %s of stream %r failed (delivery %d of %d)%s",
            self.worker.name,
            job.id,
            s.stream,
            job.deliveries,
            s.max_deliveries,
            fate,
            exc_info=exc,
            extra=self._job_extra(job),
        )
        self._report("failed", job, seconds)
        if last:
            self._dead(job, exc)
            return
        with self.lock:
            self.retries.append((time.monotonic() + delay, job))

    def _stuck(self, job: Job, seconds: float) -> None:
        """A plain handle() of a process worker's child still running `time_limit_grace` after its limit, in a
        call that does not come back to Python: the job fails here, the jobs done are acknowledged, and the
        server is asked to recycle the worker (the limiter then ends the child)."""
        s = self.settings
        exc = limit_error(s.time_limit or 0.0)
        last = s.dead_at_once(exc) is not None or job.deliveries >= s.max_deliveries
        fate = f"it moves to {s.dead_letter_stream!r}" if last else "its next delivery comes with the worker's next run"
        logger.error(
            "worker %r: job %s of stream %r is still running %.1fs after it began, %g s past its time limit of %g s, "
            "in a call that does not come back to Python: the delivery failed (%d of %d; %s); the worker's child "
            "is ended and the server recycles the worker",
            self.worker.name,
            job.id,
            s.stream,
            seconds,
            s.time_limit_grace,
            s.time_limit,
            job.deliveries,
            s.max_deliveries,
            fate,
            extra=self._job_extra(job),
        )
        self._report("failed", job, seconds)
        if last:
            self._dead(job, exc)
        with self.lock:
            ids, self.done = self.done, []
        if ids:  # not done twice unless Redis lost the acknowledgement (said)
            self._ack(ids)
        self.worker.send_record(STUCK_TOPIC, stream=s.stream, job=job.id)

    def _dead(self, job: Job, exc: BaseException) -> None:
        self.consumer.dead_letter(job, exc)
        with self.lock:
            self.held.discard(job.id)
        self._report("dead", job)
