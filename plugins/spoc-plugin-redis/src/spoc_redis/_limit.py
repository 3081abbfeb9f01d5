"""A stream worker's ``time_limit``: a ``handle()`` still running past it is interrupted.

An async one is cancelled (`run_limited`). A plain one gets `JobTimeLimit`
raised in its thread (`Limiter`, a thread of its own watching the job's
deadline: CPython's ``PyThreadState_SetAsyncExc``, delivered when the thread
next runs Python code). A call that does not come back to Python (a C call
that blocks, a ``select`` with no timeout) cannot be interrupted so: in a
process worker's child, a job still running ``time_limit_grace`` seconds
after its limit is failed by the limiter, which then asks the server to
recycle the worker and ends the child once the stop comes; a thread worker's
thread cannot be ended, and that is logged.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from spoc import log_extra, start_helper_thread

__all__ = ["STUCK_EXIT", "JobTimeLimit", "Limiter", "limit_error", "run_limited"]

logger = logging.getLogger("spoc.redis")

STUCK_EXIT = 70
"""The exit code of a child ended because a job would not return, once the server asked it to stop (EX_SOFTWARE;
spoc's own 74 and 75 mean its pipes were closed)."""
_STOP_POLL = 0.05
"""Seconds between two looks at a stuck child's stop flag (only once a job is stuck past its grace)."""

_raise_in = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
"""Have a thread raise an exception (a class) when it next runs Python code."""
_clear_in = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
"""Take back the exception `_raise_in` asked a thread to raise, if it has not raised it yet (NULL: none)."""


class JobTimeLimit(Exception):
    """A job's ``handle()`` ran past the stream worker's ``time_limit``; the delivery counts as failed."""


def limit_error(limit: float) -> JobTimeLimit:
    return JobTimeLimit(f"time limit of {limit:g} s")


async def run_limited(handle: Awaitable[Any], limit: float) -> None:
    """Await `handle`, cancelled past `limit` seconds (`JobTimeLimit` then)."""
    began = time.monotonic()
    try:
        await asyncio.wait_for(handle, limit)
    except asyncio.TimeoutError:
        if time.monotonic() - began < limit:  # raised by the job itself
            raise
        raise limit_error(limit) from None


class Limiter:
    """Watches the plain ``handle()`` of one stream worker's run; `running` before each job, `ended` after it.

    `on_stuck(job, seconds)` is called (on the limiter's thread) for a job of a
    process worker's child still running `grace` seconds after the limit; it
    fails the job and asks for the recycle, and the limiter ends the child
    once the stop comes. `ended` then says the job was given up.
    """

    def __init__(self, worker: Any, limit: float, grace: float, on_stuck: Callable[[Any, float], None]) -> None:
        self.worker = worker
        self.limit = limit
        self.grace = grace
        self.on_stuck = on_stuck
        self.in_child = worker.server_pid is not None and worker.server_pid != os.getpid()
        self.changed = threading.Condition()
        self.job: Any = None
        self.thread_id = 0
        self.began = 0.0
        self.fired = False
        self.gave_up = False
        self.closed = False
        self.thread = start_helper_thread(self._watch, f"spoc-redis-limit:{worker.name}")

    def running(self, job: Any) -> None:
        """`job` begins on the calling thread."""
        with self.changed:
            self.job, self.thread_id, self.began = job, threading.get_ident(), time.monotonic()
            self.fired = self.gave_up = False
            self.changed.notify()

    def ended(self) -> bool:
        """The job has returned or raised: a `JobTimeLimit` not yet delivered is taken back. Returns whether the
        job was given up already (failed by `on_stuck`: its outcome is counted).

        Correctness: the exception may be delivered inside this call (after the job returned), at its first
        line; it is then swallowed here, and the job's own outcome stands."""
        while True:
            try:
                with self.changed:
                    if self.fired:
                        _clear_in(self.thread_id, None)  # none pending: changes nothing
                    self.job = None
                    self.changed.notify()
                    return self.gave_up
            except JobTimeLimit:
                continue

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify()
        self.thread.join()

    def _watch(self) -> None:
        with self.changed:
            while not self.closed:
                if self.job is None:
                    self.changed.wait()
                    continue
                late = time.monotonic() - self.began - self.limit
                if not self.fired:
                    if late < 0:
                        self.changed.wait(-late)
                        continue
                    self.fired = True
                    _raise_in(self.thread_id, JobTimeLimit)
                    continue
                if late < self.grace:
                    self.changed.wait(self.grace - late)
                    continue
                job = self.job
                if not self.in_child:
                    self._cannot_end(job, late)
                    while self.job is job and not self.closed:
                        self.changed.wait()
                    continue
                self.gave_up = True
                _clear_in(self.thread_id, None)  # correctness: raised in a signal handler of spoc's, it would
                self.changed.release()  # break the stop the recycle sends (the job is given up: none is needed)
                try:
                    self.on_stuck(job, self.limit + late)
                finally:
                    self.changed.acquire()
                self._end_once_stopped()

    def _cannot_end(self, job: Any, late: float) -> None:
        name = self.worker.name
        logger.error(
            "worker %r: job %s is still running %.1fs past its time limit of %g s, in a call that does not come "
            "back to Python; a thread cannot be ended: it goes on until the call returns (make the worker a "
            "ProcessWorker to have its child ended)",
            name,
            job.id,
            late,
            self.limit,
            extra=log_extra(name),
        )

    def _end_once_stopped(self) -> None:
        """The server was asked to recycle the worker: end the child when its stop comes (its body cannot)."""
        while self.worker.is_running:
            self.changed.wait(_STOP_POLL)
        os._exit(STUCK_EXIT)
