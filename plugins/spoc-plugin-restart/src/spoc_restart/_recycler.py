"""The recycler: a thread in the server's process that notices a worker past its ``max_age`` or ``max_memory``.

One per supervised server that has a worker with either limit. It wakes at
the next instance's age limit, and once a second while it watches a process
worker's memory: the resident set size (RSS) of its child, read from
``/proc/<pid>/statm`` by the server, never in the worker. Each limit is
reported once per instance (`on_limit`); what follows (a recycle) is the
supervisor's. ``max_jobs`` needs no thread: the worker counts its jobs where
it lives (`spoc.AbstractWorker.call_at_jobs`).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spoc import start_helper_thread

__all__ = ["MEMORY_INTERVAL", "Limit", "Recycler", "resident_bytes"]

MEMORY_INTERVAL = 1.0
"""Seconds between two reads of a process worker's memory: at most once a second, as the issue of it asked."""

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Limit:
    """A limit an instance has reached: which (``"age"``, ``"jobs"``, ``"memory"``), the figure, and the limit
    drawn for the instance from its setting (with ``recycle_jitter``)."""

    reason: str
    figure: float
    limit: float
    setting: float

    def describe(self) -> str:
        """``it has run 61.2s (max_age=60; this instance's limit 58.3s)``."""
        if self.reason == "age":
            return f"it has run {self.figure:.1f}s (max_age={self.setting:g}; this instance's limit {self.limit:.1f}s)"
        if self.reason == "jobs":
            return (
                f"it has done {self.figure:.0f} jobs (max_jobs={self.setting:g}; this instance's limit "
                f"{self.limit:.0f})"
            )
        return (
            f"its process uses {_mib(self.figure)} of memory (max_memory={_mib(self.setting)}; this instance's "
            f"limit {_mib(self.limit)})"
        )


def _mib(size: float) -> str:
    return f"{size / 2**20:.1f}MiB"


def resident_bytes(pid: int) -> int | None:
    """The resident set size of process `pid` in bytes, or None when it has gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class _Watched:
    worker: Any
    started: float
    max_age: tuple[float, float] | None  # (drawn, setting)
    max_memory: tuple[float, float] | None
    next_memory_read: float = 0.0


class Recycler:
    """Watches workers' ages and memory on one thread, started with the first worker it watches.

    Args:
        name: the thread's name.
        on_limit: called on the recycler's thread with a worker and the `Limit` it reached, once per instance.
        clock: the monotonic clock.
    """

    def __init__(
        self, name: str, on_limit: Callable[[Any, Limit], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self._on_limit = on_limit
        self._clock = clock
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def watch(self, worker: Any, max_age: tuple[float, float] | None, max_memory: tuple[float, float] | None) -> None:
        """Judge `worker` from now on: `max_age` and `max_memory` are each (the instance's limit, the setting)."""
        if max_age is None and max_memory is None:
            return
        with self._lock:
            if self._closed:
                return
            self._watched[worker.name] = _Watched(worker, self._clock(), max_age, max_memory)
            if self._thread is None:
                self._thread = start_helper_thread(self._run, self.name)  # signals go to the server's main thread
        self._wake.set()

    def unwatch(self, worker: Any) -> None:
        with self._lock:
            watched = self._watched.get(worker.name)
            if watched is not None and watched.worker is worker:
                del self._watched[worker.name]

    def close(self) -> None:
        """Stop watching; the thread ends on its own at once. Not waited for: it may be waiting for the
        plugins' lock, to recycle a worker, which the hook that closes it holds (it then finds the server
        shutting down)."""
        with self._lock:
            self._closed = True
            self._watched.clear()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.clear()  # before reading what to watch: a watch() from now on wakes the wait below
            with self._lock:
                if self._closed:
                    return
                watched = list(self._watched.values())
            now = self._clock()
            wake_at = math.inf
            for entry in watched:
                limit = self._check(entry, now)
                if limit is not None:
                    self.unwatch(entry.worker)
                    self._on_limit(entry.worker, limit)
                    continue
                if entry.max_age is not None:
                    wake_at = min(wake_at, entry.started + entry.max_age[0])
                if entry.max_memory is not None:
                    wake_at = min(wake_at, entry.next_memory_read)
            self._wake.wait(None if wake_at == math.inf else max(0.0, wake_at - self._clock()))

    @staticmethod
    def _check(entry: _Watched, now: float) -> Limit | None:
        if entry.max_age is not None and now - entry.started >= entry.max_age[0]:
            return Limit("age", now - entry.started, *entry.max_age)
        if entry.max_memory is not None and now >= entry.next_memory_read:
            entry.next_memory_read = now + MEMORY_INTERVAL
            pid = getattr(entry.worker, "pid", None)
            rss = None if pid is None else resident_bytes(pid)
            if rss is not None and rss >= entry.max_memory[0]:
                return Limit("memory", rss, *entry.max_memory)
        return None
