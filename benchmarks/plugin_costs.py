"""What installed plugins cost a server that does not use them: every plugin in plugins/ installed and loaded at
its defaults, against plugin autoload off, in the same run.

- boot: ``Server.start()`` of a server with one ``fork`` process worker, until the worker's "startup" reaches
  the parent;
- add: ``add_worker()`` of a ``fork`` process worker to a running server, until its "startup";
- restart: a supervised ``fork`` process worker SIGKILLed, until its replacement's "startup", at zero backoff.
  Both servers are given spoc-plugin-restart's ``Supervisor`` at zero backoff (given to the server, it replaces
  the installed one of the same name): the figure is what the other plugins add to a restart.

Each server is built and measured in the one interpreter, with or without ``SPOC_DISABLE_PLUGIN_AUTOLOAD``,
their rounds taken in turns; a first round of each, not counted, pays the imports (a server of the same
process pays them once).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from spoc import ProcessWorker, Server, hookimpl

RESTARTS = 10


class Idle(ProcessWorker):
    def main(self) -> None:
        while not self.wait(60):
            pass


class Startups:
    """Puts (monotonic time, pid) of each worker's "startup" as the parent's hook hears it."""

    name = "bench-startups"

    def __init__(self) -> None:
        self.seen: queue.Queue[tuple[float, int]] = queue.Queue()

    @hookimpl
    def worker_started(self, event: Any) -> None:
        self.seen.put((time.monotonic(), event.pid))


@contextmanager
def plugins_installed(loaded: bool) -> Iterator[None]:
    """Autoload on (every installed plugin at its defaults) or off, for the servers started inside."""
    before = os.environ.pop("SPOC_DISABLE_PLUGIN_AUTOLOAD", None)
    if not loaded:
        os.environ["SPOC_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        yield
    finally:
        os.environ.pop("SPOC_DISABLE_PLUGIN_AUTOLOAD", None)
        if before is not None:
            os.environ["SPOC_DISABLE_PLUGIN_AUTOLOAD"] = before


def started_server(
    name: str, loaded: bool, plugins: list[object], began: list[float] | None = None, keep_environment: bool = False
) -> Server:
    """A server named `name` with one ``fork`` worker, started with every plugin loaded or none (`loaded`), or
    as the environment says (`keep_environment`); `began` gets the time its start() was called."""
    with contextlib.nullcontext() if keep_environment else plugins_installed(loaded):
        server = Server(name, plugins=plugins)
        server.add_worker(Idle("first", start_method="fork"))
        if began is not None:
            began.append(time.monotonic())
        server.start()
    return server


def stopped(server: Server) -> None:
    server.stop()
    server.join_all(30)


def boot(loaded: bool) -> float:
    startups, began = Startups(), list[float]()
    server = started_server("bench-boot", loaded, [startups], began)
    started, _ = startups.seen.get(timeout=30)
    stopped(server)
    return started - began[0]


def add(loaded: bool) -> float:
    startups = Startups()
    server = started_server("bench-add", loaded, [startups])
    startups.seen.get(timeout=30)
    began = time.monotonic()
    server.add_worker(Idle("added", start_method="fork"))
    started, _ = startups.seen.get(timeout=30)
    stopped(server)
    return started - began


def restart_latencies(cycles: int) -> list[float]:
    """Seconds from each SIGKILL of a supervised ``fork`` worker to its replacement's "startup", at zero backoff,
    `cycles` times, under the plugins the environment loads."""
    from spoc_restart import Backoff, Supervisor

    startups = Startups()
    supervisor = Supervisor(start_within=None, backoff=Backoff(initial=0.0, jitter=0.0))
    server = started_server("bench-restart", True, [supervisor, startups], keep_environment=True)
    _, pid = startups.seen.get(timeout=30)
    latencies = []
    for _ in range(cycles):
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        started, pid = startups.seen.get(timeout=30)
        latencies.append(started - killed)
    stopped(server)
    return latencies


def restart(loaded: bool) -> float:
    with plugins_installed(loaded):
        return statistics.median(restart_latencies(RESTARTS))


def missing() -> str | None:
    """Why the comparison cannot run here, or None."""
    try:
        import spoc_restart  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (nox -s bench installs every plugin)"
    return None


def measure(rounds: int, row: Callable[..., None], paired_medians: Callable[..., list[float]]) -> int:
    why = missing()
    if why is not None:
        print(f"{'every plugin vs none':<42} skipped: {why}")
        return 0
    logging.getLogger("spoc").setLevel(logging.CRITICAL)  # a line per start, kill and restart: the same in both
    missed = 0
    for label, measure_one, limit, many in (
        ("boot", boot, 1.5, 5),
        ("worker added", add, 1.2, 5),
        ("restart", restart, 1.1, 1),
    ):
        for loaded in (True, False):  # the imports, once
            measure_one(loaded)
        every, none = (
            1000 * t
            for t in paired_medians(many * rounds, lambda m=measure_one: m(True), lambda m=measure_one: m(False))
        )
        ok = every <= limit * none
        missed += not ok
        row(f"every plugin vs none: {label}", every, none, "ms", f"<={limit}x autoload off", ok)
    return missed
