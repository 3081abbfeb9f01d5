"""The watchdog: a thread, where workers' bodies live, that notices a worker that stopped showing it is alive.

A worker shows it is alive with heartbeats: reading ``is_running``, calling
``wait()``/``sleep()`` (and while it waits in them), or ``heartbeat()``. An
async worker is alive while its event loop runs the small callback the
watchdog posts to it: a loop that does not run it for the timeout is blocked
(by a blocking call in a coroutine, as a rule), and every task of the worker
with it. Only ``main()`` is judged: setup and teardown have the server's own
deadlines.

One watchdog runs in the server's process for its thread workers, and one in
each supervised process worker's child, which tells the server what it found.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spoc import start_helper_thread

__all__ = ["Hang", "Watchdog"]

MIN_INTERVAL = 0.01
MAX_INTERVAL = 1.0


@dataclass(frozen=True)
class Hang:
    """A worker found hung: for how long, whether its event loop is what is blocked, and where it is."""

    seconds: float
    timeout: float
    loop_blocked: bool
    stack: str

    def describe(self, worker: str) -> str:
        return f"worker {worker!r} is hung: {self.symptom}"

    @property
    def symptom(self) -> str:
        """What the watchdog saw, and for how long."""
        what = "its event loop has been blocked" if self.loop_blocked else "it has shown no heartbeat"
        return f"{what} for {self.seconds:.1f}s (watchdog_timeout={self.timeout:g})"


@dataclass
class _Watched:
    worker: Any
    timeout: float
    last_alive: float
    beats: int = 0  # the worker's heartbeats when last looked at
    reported: bool = False
    tick_posted: bool = False
    ticked: bool = False

    def tick(self) -> None:
        """Run by the worker's event loop: it is not blocked."""
        self.ticked = True
        self.tick_posted = False


class Watchdog:
    """Watches workers whose bodies run in this process, on one thread.

    Args:
        name: the thread's name.
        on_hung: called on the watchdog's thread with a worker found hung
            and its `Hang`, once per hang.
        on_alive: called when a worker reported hung shows it is alive again.
        on_check: called after every round with the round's number, from 1 (a child
            tells its server that its watchdog runs).
    """

    def __init__(
        self,
        name: str,
        on_hung: Callable[[Any, Hang], None],
        on_alive: Callable[[Any], None] = lambda worker: None,
        on_check: Callable[[int], None] = lambda rounds: None,
    ) -> None:
        self.name = name
        self._on_hung = on_hung
        self._on_alive = on_alive
        self._on_check = on_check
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._shortest = float("inf")

    def start(self, timeout: float) -> None:
        """Run the rounds (once started, until `close`), often enough for a `timeout` in seconds."""
        with self._lock:
            self._shortest = min(self._shortest, timeout)
            if self._thread is None and not self._closed:
                self._thread = start_helper_thread(self._run, self.name)  # signals go to the worker's main thread
        self._wake.set()  # the interval may have shrunk

    def watch(self, worker: Any, timeout: float) -> None:
        """Judge `worker` from now on (hung after `timeout` seconds without a sign of life)."""
        with self._lock:
            self._watched[worker.name] = _Watched(worker, timeout, time.monotonic())
        self.start(timeout)

    def unwatch(self, worker: Any) -> None:
        with self._lock:
            watched = self._watched.get(worker.name)
            if watched is not None and watched.worker is worker:
                del self._watched[worker.name]

    def close(self) -> None:
        """Stop the thread and wait for it (briefly: it only ever waits on its own event)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    @property
    def interval(self) -> float:
        """How often the workers are looked at: a quarter of the shortest timeout, within bounds."""
        return max(MIN_INTERVAL, min(MAX_INTERVAL, self._shortest / 4))

    def _run(self) -> None:
        rounds = 0
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._closed:
                return
            with self._lock:
                watched = list(self._watched.values())
            for entry in watched:
                self._check(entry, time.monotonic())
            rounds += 1
            self._on_check(rounds)

    def _check(self, entry: _Watched, now: float) -> None:
        worker = entry.worker
        beats, entry.beats = entry.beats, worker.heartbeats
        if worker.lifecycle_phase != "main":
            entry.last_alive = now
            return
        loop = worker.running_loop
        alive = self._loop_ticked(entry, loop) if loop is not None else entry.beats != beats
        if alive:
            entry.last_alive = now
            if entry.reported:
                entry.reported = False
                self._on_alive(worker)
            return
        silent = now - entry.last_alive
        if silent >= entry.timeout and not entry.reported:
            entry.reported = True
            stack = worker.current_stack() or "  <no stack: the body is not running>\n"
            self._on_hung(worker, Hang(silent, entry.timeout, loop is not None, stack))

    @staticmethod
    def _loop_ticked(entry: _Watched, loop: Any) -> bool:
        """Whether the loop ran the tick posted last round; post the next one."""
        ticked, entry.ticked = entry.ticked, False
        if not entry.tick_posted:
            try:
                loop.call_soon_threadsafe(entry.tick)
                entry.tick_posted = True
            except RuntimeError:  # the loop has closed: the body is ending
                return True
        return ticked
