"""The monitor: the one thread per server that receives every event and notices every death.

It blocks in a single ``poll()`` on its wake-up pipe,
every process worker's event pipe and every process worker's sentinel, so a
death or an event is seen within microseconds and nothing polls with sleeps.
Thread workers hand their events to its inbox and poke the wake-up pipe;
during `Server.run_forever` the pipe is also the process's signal wakeup fd,
so Python's C-level signal handler writes each signal's number there, from
whichever thread the kernel delivered it to.

Because it is the only thread that handles events, whatever it calls (the
server's bookkeeping, and plugin hooks) is never called concurrently, and each
worker's events arrive in the order the worker emitted them.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable

from . import _fds
from ._events import WorkerEvent
from ._linux import wait_until_thread_exited
from ._process import ProcessWorker
from ._signals import SERVER_SIGNALS
from ._worker import AbstractWorker, Emit

__all__ = ["Monitor"]

logger = logging.getLogger("spoc")

_WAKE = b"\0"
_SIGNAL_NUMBERS = frozenset(int(signum) for signum in SERVER_SIGNALS)


class Monitor:
    """Receives the events of a server's workers on one thread; see the module docstring.

    Args:
        on_event: called for each event, with the worker it came from.
        on_process_exit: called once a process worker's death has been recorded.
        on_signal: called with the number of each signal the server's handlers caught.
        name: the thread's name.
    """

    def __init__(
        self,
        on_event: Callable[[AbstractWorker, WorkerEvent], None],
        on_process_exit: Callable[[ProcessWorker], None],
        on_signal: Callable[[int], None],
        name: str,
    ) -> None:
        self._on_event = on_event
        self._on_process_exit = on_process_exit
        self._on_signal = on_signal
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self._wake_r = _fds.track(wake_r)
        self._wake_w = _fds.track(wake_w)
        self._inbox: deque[tuple[AbstractWorker, WorkerEvent]] = deque()
        self._inbox_wake_pending = False
        self._watched: list[ProcessWorker] = []
        self._unpolled: list[ProcessWorker] = []  # watched, not yet registered with the monitor's poll
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

    # ------------------------------------------------------------------ fed by other threads

    def deliver_to_inbox(self, worker: AbstractWorker) -> Emit:
        """Return the emit function a thread worker uses to send its events here."""

        def deliver(event: WorkerEvent) -> None:
            self._inbox.append((worker, event))
            if not self._inbox_wake_pending:  # one wake-up per batch, not per event
                self._inbox_wake_pending = True
                self.wake()

        return deliver

    def watch(self, worker: ProcessWorker) -> None:
        """Start reading a started process worker's events and watching its sentinel."""
        with self._lock:
            self._watched.append(worker)
            self._unpolled.append(worker)
        self.wake()

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        """Run `action` on the monitor thread once `delay` seconds have passed (0: after what it handles now).

        The monitor's poll wakes for it, so nothing polls with sleeps; what the
        action does is serialised with the events, like a hook. Pending actions
        are dropped when the monitor closes.
        """
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
        """Stop the thread once it has handled what is pending, and release its fds."""
        with self._lock:
            self._closing = True
            self._write(_WAKE)
        if self.started and threading.current_thread() is not self._thread:
            self._thread.join()
            wait_until_thread_exited(self._thread.native_id)
        with self._lock:
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    _fds.untrack(fd)
                    os.close(fd)
            self._wake_w = self._wake_r = -1

    # ------------------------------------------------------------------ the monitor thread

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        owners: dict[int, ProcessWorker] = {}  # every fd polled for a worker: its sentinel and event pipe
        while True:
            with self._lock:
                unpolled, self._unpolled = self._unpolled, []
                done = self._closing and not self._watched
            if done:
                self._handle_inbox()
                return
            for worker in unpolled:
                for fd in worker._wait_fds():
                    owners[fd] = worker
                    poller.register(fd, select.POLLIN)
            try:
                for fd, _ in poller.poll(self._poll_timeout()):
                    self._ready(fd, owners, poller)
                self._handle_inbox()
                self._run_due_timers()
            except Exception:
                logger.exception("spoc monitor: unexpected error; it keeps running")

    def _poll_timeout(self) -> int | None:
        """Milliseconds until the next timer (rounded up), or None to wait for an fd only."""
        if not self._timers:  # the common case, read without the lock: a timer added meanwhile wakes the poll
            return None
        with self._lock:
            if not self._timers:
                return None
            return max(0, int((self._timers[0][0] - time.monotonic()) * 1000) + 1)

    def _run_due_timers(self) -> None:
        while self._timers:  # checked without the lock first: most wake-ups are events, not timers
            with self._lock:
                if not self._timers or self._timers[0][0] > time.monotonic():
                    return
                _, _, action = heapq.heappop(self._timers)
            try:
                action()
            except Exception:
                logger.exception("spoc monitor: a scheduled action failed; it keeps running")

    def _ready(self, fd: int, owners: dict[int, ProcessWorker], poller: select.poll) -> None:
        if fd == self._wake_r:
            return self._read_wake_pipe()
        worker = owners.get(fd)
        if worker is None:
            return  # its worker ended earlier in this batch
        if fd == worker._sentinel_fd():
            for owned in worker._wait_fds():
                if owners.pop(owned, None) is not None:
                    poller.unregister(owned)
            self._process_ended(worker)
        elif worker.exit_info is None and not worker._read_event(self._event_handler(worker)):
            owners.pop(fd, None)
            poller.unregister(fd)
            worker._close_events()

    def _read_wake_pipe(self) -> None:
        try:
            data = os.read(self._wake_r, 4096)
        except BlockingIOError:
            return
        for byte in data:
            if byte in _SIGNAL_NUMBERS:
                self._on_signal(byte)  # other numbers: signals handled elsewhere, or our own wake-ups

    def _event_handler(self, worker: AbstractWorker) -> Emit:
        return lambda event: self._on_event(worker, event)

    def _process_ended(self, worker: ProcessWorker) -> None:
        if worker.exit_info is None:
            worker._finish(self._event_handler(worker))
        with self._lock:
            if worker in self._watched:
                self._watched.remove(worker)
        self._on_process_exit(worker)

    def _handle_inbox(self) -> None:
        self._inbox_wake_pending = False  # before draining: a later event wakes us again
        while self._inbox:
            worker, event = self._inbox.popleft()
            try:
                self._on_event(worker, event)
            except Exception:
                logger.exception("spoc monitor: handling %s of worker %r failed", event.kind, worker.name)
