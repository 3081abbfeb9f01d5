"""Targets for ``spoc run`` tests: each kind of object the command accepts, and ones it must refuse.

Workers print ``<name>: in main`` on stdout once running, so a test knows when to signal.
Set CLI_APP_LOGGING=1 to make the module configure logging itself, as an application may.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from spoc.workers import ProcessWorker, Server, ThreadWorker, set_uvloop_if_available

if os.environ.get("CLI_APP_LOGGING") == "1":
    logging.basicConfig(level=logging.INFO, format="APP %(levelname)s %(message)s", stream=sys.stderr)
if os.environ.get("CLI_APP_ASKS_FOR_UVLOOP") == "1":
    set_uvloop_if_available()
if os.environ.get("CLI_APP_SLOW_IMPORT") == "1":
    print("importing", flush=True)
    signal.pause()  # a module that takes its time to import; only a signal ends the wait


class Waiter(ThreadWorker):
    """Runs until asked to stop."""

    def main(self) -> None:
        print(f"{self.name}: in main", flush=True)
        while not self.wait(10):
            pass


class ProcessWaiter(ProcessWorker):
    """Runs in a child process until asked to stop."""

    def main(self) -> None:
        print(f"{self.name}: in main", flush=True)
        while not self.wait(10):
            pass


class Finisher(ThreadWorker):
    """Ends by itself, cleanly."""

    def main(self) -> None:
        print(f"{self.name}: done", flush=True)


class NeedsConfig(ThreadWorker):
    """A worker class that cannot be built from its name alone."""

    def __init__(self, name: str, config: dict[str, str]) -> None:
        super().__init__(name=name)
        self.config = config

    def main(self) -> None:
        pass


class Failing(ProcessWorker):
    """Fails in main, in a child process."""

    def main(self) -> None:
        raise RuntimeError("the upstream queue is gone")


class Stubborn(ProcessWorker):
    """Ignores the stop request: shutdown must force it."""

    def main(self) -> None:
        print(f"{self.name}: in main", flush=True)
        while True:
            self.wait(10)


class LoopReporter(ThreadWorker):
    """An async worker that says which event loop it runs on."""

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        print(f"{self.name}: loop {type(loop).__module__}.{type(loop).__qualname__}", flush=True)


server = Server("cli-app")
server.add_worker(Waiter(name="ticker"))
server.add_worker(ProcessWaiter(name="cruncher"))

one_worker = Finisher(name="single")
workers = [Finisher(name="first"), Finisher(name="second")]
empty: list[Finisher] = []
mixed = [Finisher(name="ok"), "not a worker"]
failing = [Failing(name="doomed")]
stubborn = [Stubborn(name="mule")]
loop_reporter = LoopReporter(name="looper")
number = 42


def make_workers() -> list[Finisher]:
    """A factory: spoc run calls it."""
    return [Finisher(name="made")]


def make_nothing() -> None:
    """A factory that forgets to return."""


async def make_async() -> list[Finisher]:
    return [Finisher(name="never")]


no_workers = Server("idle")  # a usage error for spoc run: nothing to run
