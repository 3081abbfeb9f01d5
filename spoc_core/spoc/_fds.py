"""The file descriptors spoc opens for supervision, so that a forked child can close them.

A child that kept a copy of a sibling's control pipe would make that sibling
deaf to its parent's death (no EOF while a copy is open): right after a fork,
the child closes every fd recorded here but its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

__all__ = ["OwnFd", "close_all_tracked", "close_quietly", "close_tracked", "renew_lock", "track", "untrack"]

_tracked: set[int] = set()
_lock = threading.Lock()


def track(fd: int) -> int:
    """Record `fd` as a supervising fd of this process; return it."""
    with _lock:
        _tracked.add(fd)
    return fd


def untrack(fd: int) -> None:
    """Forget `fd` (call before closing it)."""
    with _lock:
        _tracked.discard(fd)


def close_tracked(fd: int) -> None:
    """Forget tracked `fd` and close it."""
    untrack(fd)
    os.close(fd)


def close_quietly(fds: Iterable[int]) -> None:
    """Close each of `fds`, one already closed or never open included (fds handed over by plugins, say)."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def close_all_tracked(keep: frozenset[int] = frozenset()) -> None:
    """In a freshly forked child: close every inherited supervising fd except `keep`. No lock: one another
    thread held at the fork would never be released here."""
    for fd in list(_tracked):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    _tracked.clear()
    _tracked.update(keep)


class OwnFd:
    """One of spoc's fds in a worker's child, which the worker's own code may close under us (a daemon-style
    library's ``os.closerange()``), and then reuse the number for a file of its own.

    Correctness: written to after such a close, the number would put spoc's bytes in the worker's file;
    `still_ours` tells whether it still names the file it named when this was made.
    """

    __slots__ = ("_identity", "fd")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._identity = _identity(fd)

    def still_ours(self) -> bool:
        try:
            return _identity(self.fd) == self._identity
        except OSError:  # closed
            return False


def _identity(fd: int) -> tuple[int, int]:
    status = os.fstat(fd)
    return status.st_dev, status.st_ino


def renew_lock() -> None:
    """In a freshly forked single-threaded child: replace a lock another thread may have held at the fork."""
    global _lock
    _lock = threading.Lock()
