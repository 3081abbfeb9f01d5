"""The monitor: the one thread per server that receives every event and notices every death.

It blocks in one ``poll()`` on its wake-up pipe and every fd a backend asked
it to watch (`WorkerChannel.watch`), and calls the backend's callback for
each readable one. Events arrive through each worker's `sender`: from a
thread worker's thread (which pokes the wake-up pipe), or from a callback on
this thread. Under `Server.run_forever` the wake-up pipe is also the signal
wakeup fd. Being the only thread that handles events, it never runs two
hooks of a server at once, and keeps each worker's events in order.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from . import _fds
from ._events import WorkerEvent
from ._linux import wait_until_thread_exited
from ._log_extra import log_extra
from ._poll import Poller
from ._signals import SERVER_SIGNALS

__all__ = ["Monitor"]

logger = logging.getLogger("spoc")

_WAKE = b"\0"
_SIGNAL_NUMBERS = frozenset(int(signum) for signum in SERVER_SIGNALS)

Sender = TypeVar("Sender")


class Monitor(Generic[Sender]):
    """Receives the events of a server's workers on one thread (see the module docstring): `on_event` gets
    each with what `sender` was given for its sender, `on_signal` each signal's number."""

    def __init__(
        self,
        on_event: Callable[[Sender, WorkerEvent], None],
        on_signal: Callable[[int], None],
        name: str,
    ) -> None:
        self._on_event = on_event
        self._on_signal = on_signal
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self._wake_r = _fds.track(wake_r)
        self._wake_w = _fds.track(wake_w)
        self._inbox: deque[tuple[Sender, WorkerEvent]] = deque()
        self._inbox_wake_pending = False
        self._poller = Poller()  # touched by the monitor thread only
        self._poller.watch(wake_r, self._on_wake_pipe)
        self._changes: list[tuple[int, Callable[[], None] | None]] = []  # watch/unwatch asked from other threads
        self._released: list[int] = []  # fds to close once no longer watched (`release`)
        self._timers: list[tuple[float, int, Callable[[], None]]] = []  # a heap of (deadline, order, action)
        self._timer_order = itertools.count()
        self._lock = threading.RLock()  # re-entered when stop() runs in a signal handler on a thread inside wake()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def start(self) -> None:
        self._thread.start()

    def _on_monitor_thread(self) -> bool:
        return threading.get_ident() == self._thread.ident

    # ------------------------------------------------------------------ fed by any thread

    def sender(self, sender: Sender) -> Callable[[WorkerEvent], None]:
        """Return the function that hands `sender`'s events to the monitor thread, in order."""

        def send(event: WorkerEvent) -> None:
            self._inbox.append((sender, event))
            # One wake-up per batch, not per event; none from the monitor thread itself, which handles the
            # inbox before it polls again (event delay: a process worker's events are read on this thread).
            if not self._inbox_wake_pending and not self._on_monitor_thread():
                self._inbox_wake_pending = True
                self.wake()

        return send

    def watch(self, fd: int, on_readable: Callable[[], None]) -> None:
        """Call `on_readable()` on the monitor thread each time `fd` is readable, until `unwatch(fd)`."""
        self._change(fd, on_readable)

    def unwatch(self, fd: int) -> None:
        """Stop watching `fd`: at once on the monitor thread (from a callback), else before the next poll."""
        self._change(fd, None)

    def release(self, fd: int) -> None:
        """Stop watching `fd` and close it: on the monitor thread (or once it has ended) at once, else before
        its next poll, so that the fd's number is never reused while the poll still waits on it."""
        with self._lock:
            if not self._on_monitor_thread() and self._thread.is_alive():
                self._changes.append((fd, None))
                self._released.append(fd)
                self._write(_WAKE)
                return
        if self._on_monitor_thread():
            self._apply(fd, None)
        _fds.close_tracked(fd)

    def _change(self, fd: int, on_readable: Callable[[], None] | None) -> None:
        if self._on_monitor_thread():
            self._apply(fd, on_readable)
            return
        with self._lock:
            self._changes.append((fd, on_readable))
        self.wake()

    def _apply(self, fd: int, on_readable: Callable[[], None] | None) -> None:
        self._poller.unwatch(fd)
        if on_readable is not None:
            self._poller.watch(fd, functools.partial(self._ready, fd, on_readable))

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        """Run `action` on the monitor thread, serialised with the events, once `delay` seconds have passed
        (the poll wakes for it). Pending actions are dropped when the monitor closes."""
        with self._lock:
            deadline = time.monotonic() + max(0.0, delay)
            heapq.heappush(self._timers, (deadline, next(self._timer_order), action))
        self.wake()

    def wake(self) -> None:
        with self._lock:
            self._write(_WAKE)

    @property
    def wakeup_fd(self) -> int:
        """The write end of the wake-up pipe: a signal's number written here is handed to `on_signal`."""
        return self._wake_w

    def _write(self, data: bytes) -> None:
        fd = self._wake_w
        if fd >= 0:
            try:
                os.write(fd, data)
            except (BlockingIOError, OSError):  # full: the monitor is awake anyway
                pass

    def close(self) -> None:
        """Stop the thread once it has handled what is pending, and release its fds (once every worker has
        ended; an fd still watched is dropped)."""
        with self._lock:
            self._closing = True
            self._write(_WAKE)
        if self.started and not self._on_monitor_thread():
            self._thread.join()
            # Correctness: join_all() returns once the server's threads are gone from the OS too, so that a
            # server started right after this one still finds the process single-threaded and forks directly.
            wait_until_thread_exited(self._thread.native_id)
        with self._lock:
            for fd in (self._wake_r, self._wake_w, *self._released):
                if fd >= 0:
                    _fds.close_tracked(fd)
            self._wake_w = self._wake_r = -1
            self._released = []

    # ------------------------------------------------------------------ the monitor thread

    def _run(self) -> None:
        while True:
            if self._apply_changes():
                self._handle_inbox()
                return
            try:
                self._poller.poll(self._poll_timeout())
                self._handle_inbox()
                if self._timers:  # read without the lock: a timer added meanwhile wakes the poll
                    self._run_due_timers()
                    self._handle_inbox()  # what the timers' actions sent
            except Exception:
                logger.exception("spoc monitor: unexpected error; it keeps running")

    def _apply_changes(self) -> bool:
        """Apply the watches other threads asked for; return whether the monitor is closing.

        A method of its own, so that no local of the loop keeps a callback (and its worker) alive.
        """
        if not (self._changes or self._closing):  # read without the lock: a change made meanwhile wakes the poll
            return False
        with self._lock:
            changes, self._changes = self._changes, []
            released, self._released = self._released, []
            closing = self._closing
        for fd, on_readable in changes:
            self._apply(fd, on_readable)
        for fd in released:
            _fds.close_tracked(fd)
        return closing

    def _ready(self, fd: int, on_readable: Callable[[], None]) -> None:
        try:
            on_readable()
        except Exception:
            logger.exception("spoc monitor: the callback watching fd %d failed; the fd is no longer watched", fd)
            self._apply(fd, None)

    def _poll_timeout(self) -> float | None:
        """Seconds until the next timer, or None to wait for an fd only."""
        if not self._timers:  # the common case, read without the lock: a timer added meanwhile wakes the poll
            return None
        with self._lock:
            return self._timers[0][0] - time.monotonic() if self._timers else None

    def _run_due_timers(self) -> None:
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > time.monotonic():
                    return
                _, _, action = heapq.heappop(self._timers)
            try:
                action()
            except Exception:
                logger.exception("spoc monitor: a scheduled action failed; it keeps running")

    def read_signals_now(self) -> None:
        """On the monitor thread: hand the signals the wake-up pipe holds to `on_signal` now, not at the next
        poll (before an event is judged that one of them may explain).

        Correctness: the pipe also holds wake-ups (an event in the inbox, a timer) that this read takes; one is
        written back, or the next poll would sleep through them (a server hung after a worker's end)."""
        if self._read_wake_pipe():
            self._write(_WAKE)

    def _on_wake_pipe(self) -> None:
        self._read_wake_pipe()  # woken: the poll loop goes on to the inbox and the timers anyway

    def _read_wake_pipe(self) -> bool:
        """Hand the signals the wake-up pipe holds to `on_signal`; whether it held anything else (a wake-up)."""
        try:
            data = os.read(self._wake_r, 4096)
        except BlockingIOError:
            return False
        woken = False
        for byte in data:
            if byte in _SIGNAL_NUMBERS:
                self._on_signal(byte)
            else:  # signals handled elsewhere, or our own wake-ups
                woken = True
        return woken

    def _handle_inbox(self) -> None:
        self._inbox_wake_pending = False  # before draining: a later event wakes us again
        while self._inbox:
            sender, event = self._inbox.popleft()
            try:
                self._on_event(sender, event)
            except Exception:
                logger.exception(
                    "spoc monitor: handling %s event of worker %r failed",
                    event.kind,
                    event.worker,
                    extra=log_extra(event.worker),
                )
