"""A one-way flag that threads can wait on."""

from __future__ import annotations

import _thread

__all__ = ["Latch"]


class Latch:
    """Like a `threading.Event` that is never cleared, and much cheaper to create.

    A worker makes fresh ones for each run, a process worker inside its newly
    forked child, where every object built costs copy-on-write faults:
    `threading.Event` builds a `Condition` with its lock and half a dozen
    bound methods; a latch is one lock, held until `set()`.
    Setting it is safe from any thread and from a signal handler.
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
