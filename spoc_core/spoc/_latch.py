"""A one-way flag that threads can wait on, and a wait that every signal wakes."""

from __future__ import annotations

import _thread
import os
import signal
import threading
import time

from . import _fds
from ._poll import Poller

__all__ = ["Latch", "SignalWake"]


class Latch:
    """Like a `threading.Event` that is never cleared, and safe to set from a signal handler.

    Correctness: `stop()` may run in a signal handler, between any two
    bytecodes of the main thread; `Event.set` takes a lock that thread may
    hold (in its own `wait`), and would wait for itself. A latch is one lock,
    held until `set()` releases it, which never blocks.
    """

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._set = False
        self._lock = _thread.allocate_lock()
        self._lock.acquire()

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            try:
                self._lock.release()
            except RuntimeError:  # another thread released it first
                pass

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set or until `timeout` seconds passed; return whether it is set."""
        if self._set:
            return True
        if self._lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            try:
                self._lock.release()  # for the next waiter
            except RuntimeError:  # a racing set() released it meanwhile
                pass
        return self._set


class SignalWake:
    """Wakes a wait on the main thread for every signal, so that Python runs the handlers at once.

    A signal landing between a handler and the next lock wait would be seen
    only when the wait ends (a worker's SIGHUP handler a minute late, after
    ``self.wait(60)``). Made the wake-up fd, this pipe gets a byte for every
    signal, and a wait that polls it misses none; the bytes mean nothing else.
    """

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self._read_end, self._write_end = _fds.OwnFd(self.read_fd), _fds.OwnFd(self.write_fd)
        self.closed = False
        """A process worker's own code closed the pipe (``os.closerange()``): waits use the latch alone."""
        self.thread = threading.get_ident()
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)

    def poke(self) -> None:
        """Wake the waiter (after setting what it waits for)."""
        if self.closed or not self._write_end.still_ours():
            return
        try:
            os.write(self.write_fd, b"\0")
        except OSError:  # full: the waiter is woken anyway
            pass

    def drain(self) -> None:
        if not self._read_end.still_ours():
            self.closed = True
            return
        try:
            while os.read(self.read_fd, 4096):
                pass
        except OSError:
            pass

    def wait(self, latch: Latch, timeout: float | None) -> bool:
        """Wait on the thread that made this until `latch` is set or `timeout` passed; return whether it is set."""
        deadline = None if timeout is None else time.monotonic() + timeout
        poller = Poller()
        poller.watch(self.read_fd, self.drain)  # the handlers of the signals that woke us run before the next bytecode
        while not latch.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return latch.is_set()
            if self.closed:  # a lock wait still runs the handlers of the signals that interrupt it
                signal.set_wakeup_fd(-1)
                return latch.wait(remaining)
            poller.poll(remaining)
        return True
