"""Workers for the restart plugin's tests; a module of its own so that spawned children import them."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any

from spoc import AbstractWorker, ProcessWorker, ThreadWorker


def announce(worker: AbstractWorker, dirty: bool = False) -> None:
    """Tell the test that `worker`'s run number ``worker.restarts`` is in main (see supervision.running)."""
    worker.send_record("test.running", restarts=worker.restarts, dirty=dirty, pid=os.getpid())


class Flaky(AbstractWorker):
    """Fails in `fail_in` ("setup" or "main") while `restarts < failures`; then reports and waits for stop.

    It marks itself dirty before failing: a restarted instance must not be.
    """

    def __init__(self, name: str, fail_in: str = "main", failures: int = 1, **options: Any) -> None:
        super().__init__(name, **options)
        self.fail_in = fail_in
        self.failures = failures
        self.dirty = False

    def _maybe_fail(self, phase: str) -> None:
        if phase == self.fail_in and self.restarts < self.failures:
            self.dirty = True
            raise RuntimeError(f"{self.name} failed in {phase}, run {self.restarts}")

    def setup(self) -> None:
        self._maybe_fail("setup")

    def main(self) -> None:
        announce(self, self.dirty)
        self._maybe_fail("main")
        while not self.wait(60):
            pass


class FlakyThread(Flaky, ThreadWorker):
    pass


class FlakyProcess(Flaky, ProcessWorker):
    pass


class FailsOnCue(ProcessWorker):
    """On its first run, fails when `cue` (a multiprocessing.Event) is set: once its companions all run."""

    def __init__(self, name: str, cue: Any, **options: Any) -> None:
        super().__init__(name, **options)
        self.cue = cue

    def main(self) -> None:
        announce(self)
        if self.restarts == 0:
            self.cue.wait(30)
            raise RuntimeError(f"{self.name} failed on cue")
        while not self.wait(60):
            pass


class FlakyAsync(ThreadWorker):
    """An async worker that fails in main on its first run."""

    async def main(self) -> None:
        announce(self)
        if self.restarts == 0:
            await asyncio.sleep(0)
            raise RuntimeError("async failure")
        await self.sleep(60)


class FlakyAsyncProcess(ProcessWorker):
    async def main(self) -> None:
        announce(self)
        if self.restarts == 0:
            raise RuntimeError("async failure in a child")
        await self.sleep(60)


class EndsAtOnce(ThreadWorker):
    """Reports, then returns from main: a clean end on its own account."""

    def main(self) -> None:
        announce(self)


class Steady(ThreadWorker):
    """Reports, then runs until it is stopped."""

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)

    def main(self) -> None:
        announce(self)
        while not self.wait(60):
            pass


class SteadyProcess(ProcessWorker):
    def main(self) -> None:
        announce(self)
        while not self.wait(60):
            pass


class Aborts(ProcessWorker):
    """Dies from os.abort() on its first run."""

    def main(self) -> None:
        announce(self)
        if self.restarts == 0:
            os.abort()
        while not self.wait(60):
            pass


class Stuck(ThreadWorker):
    """On its first run, blocks in main without a heartbeat until `release` is set."""

    def __init__(self, name: str, release: threading.Event, **options: Any) -> None:
        super().__init__(name, **options)
        self.release = release

    def main(self) -> None:
        announce(self)
        self.release.wait(60)  # a stand-in for a call that never returns
        while not self.wait(60):
            pass


class StuckProcess(ProcessWorker):
    """On its first run, sleeps in main without a heartbeat (until the watchdog has it killed)."""

    def main(self) -> None:
        announce(self)
        if self.restarts == 0:
            time.sleep(60)  # a stand-in for a call that never returns
        while not self.wait(60):
            pass


class BlocksItsLoop(ThreadWorker):
    """An async worker whose coroutine blocks the event loop until `release` is set."""

    def __init__(self, name: str, release: threading.Event, **options: Any) -> None:
        super().__init__(name, **options)
        self.release = release

    async def main(self) -> None:
        announce(self)
        self.release.wait(60)  # a blocking call inside a coroutine
        await self.sleep(60)


class BlocksItsLoopProcess(ProcessWorker):
    async def main(self) -> None:
        announce(self)
        if self.restarts == 0:
            time.sleep(60)  # a blocking call inside a coroutine
        await self.sleep(60)


class Busy(ThreadWorker):
    """Works without waiting, reading is_running between steps: alive, however busy."""

    def main(self) -> None:
        announce(self)
        while self.is_running:
            sum(range(1000))


class FailsOnStop(ThreadWorker):
    """Fails when it is asked to stop: a failure during shutdown."""

    def main(self) -> None:
        announce(self)
        while not self.wait(60):
            pass
        raise RuntimeError("failed while stopping")


class StopsHimself(ProcessWorker):
    def main(self) -> None:
        announce(self)
        self.stop()


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


class Outage(ThreadWorker):
    """Depends on a service that is down between the readings `down` of `clock` (a FakeClock it moves).

    An attempt while the service is down moves the clock `step` seconds on in its setup (the time an
    attempt and its backoff take), then fails at once in `fail_in`. Otherwise the worker reports; with
    `lose` given, its first run loses the service (fails in main) once `lose` is set; any other run
    works until stopped.
    """

    def __init__(
        self,
        name: str,
        clock: Any,
        down: tuple[float, float],
        *,
        step: float = 3.0,
        fail_in: str = "setup",
        lose: threading.Event | None = None,
        **options: Any,
    ) -> None:
        super().__init__(name, **options)
        self.clock, self.down, self.step, self.fail_in, self.lose = clock, down, step, fail_in, lose
        self.failing = False

    def setup(self) -> None:
        start, end = self.down
        if start <= self.clock() < end:
            self.clock.advance(self.step)
            self.failing = True
            if self.fail_in == "setup":
                raise ConnectionError(f"{self.name}: the service is down")

    def main(self) -> None:
        if self.failing:
            raise ConnectionError(f"{self.name}: the service is down")
        announce(self)
        if self.lose is not None and self.restarts == 0:
            self.lose.wait(30)
            raise ConnectionError(f"{self.name}: lost the service")
        while not self.wait(60):
            pass


class JobFailsEveryThirdRun(AbstractWorker):
    """Runs a 0.1 s job three times and fails on the third, until run number `runs`, which works until stopped."""

    runs = 8

    def main(self) -> None:
        announce(self)
        if self.restarts < self.runs:
            self.wait(0.3)  # the two jobs that work, and the third that fails
            raise RuntimeError(f"{self.name}: the third job failed")
        while not self.wait(60):
            pass


class JobFailsEveryThirdRunThread(JobFailsEveryThirdRun, ThreadWorker):
    pass


class JobFailsEveryThirdRunProcess(JobFailsEveryThirdRun, ProcessWorker):
    pass
