"""What may travel to a child process: the unpicklable-attribute finder and the thread-only check.

Pickle says "cannot pickle '_thread.lock' object" and no more: spoc names the
attribute at fault (``self.jobs.mutex``). It also finds objects that only work
between threads (`queue.Queue`, `threading.Event`...), of which each side of
a ProcessWorker gets its own copy.
"""

from __future__ import annotations

import io
import os
import queue
import threading
from collections.abc import Iterator
from multiprocessing import context as mp_context
from multiprocessing import reduction
from typing import Any, cast

__all__ = [
    "THREAD_ONLY_TYPES",
    "FdCollector",
    "PassedFd",
    "find_thread_only",
    "find_unpicklable",
    "pickle_for_child",
    "received_fds",
    "thread_only_advice",
]

THREAD_ONLY_TYPES: dict[type, str] = {
    queue.Queue: "multiprocessing.Queue()",
    queue.SimpleQueue: "multiprocessing.SimpleQueue()",
    type(threading.Lock()): "multiprocessing.Lock()",
    type(threading.RLock()): "multiprocessing.RLock()",
    threading.Event: "multiprocessing.Event()",
    threading.Condition: "multiprocessing.Condition()",
    threading.Semaphore: "multiprocessing.Semaphore()",
    threading.Barrier: "multiprocessing.Barrier()",
}
"""Thread-only types, each with the `multiprocessing` counterpart to use instead."""

_MAX_DEPTH = 4
_PLAIN_TYPES = (str, bytes, int, float, bool, type(None))


received_fds: list[int] = []
"""In a child that received a pickled worker: the fds that came with it, for `PassedFd`."""


class PassedFd:
    """Stands for an fd sent along with a pickled object; `detach()` gives the receiver's copy."""

    def __init__(self, index: int) -> None:
        self.index = index

    def detach(self) -> int:
        """A new fd for the receiver to own (the received one is closed by whoever received it)."""
        return os.dup(received_fds[self.index])


class FdCollector:
    """Plays multiprocessing's spawning Popen while an object is pickled, so that its pipes, queues and locks
    pickle: the fds they need are collected in `fds`, to be sent alongside (SCM_RIGHTS)."""

    DupFd = PassedFd

    def __init__(self) -> None:
        self.fds: list[int] = []

    def duplicate_for_child(self, fd: int) -> int:
        self.fds.append(fd)
        return len(self.fds) - 1


def pickle_for_child(obj: object) -> tuple[bytes, list[int]]:
    """Pickle `obj` as multiprocessing does for a child: return the bytes and the fds to send with them."""
    collector = FdCollector()
    buffer = io.BytesIO()
    mp_context.set_spawning_popen(cast(Any, collector))
    try:
        reduction.ForkingPickler(buffer).dump(obj)
    finally:
        mp_context.set_spawning_popen(None)
    return buffer.getvalue(), collector.fds


def _children(obj: object, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f"{path}[{key!r}]", value
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for index, value in enumerate(obj):
            yield f"{path}[{index}]", value
    elif not type(obj).__module__.startswith("multiprocessing"):
        state = _own_state(obj)
        if isinstance(state, dict):
            for name, value in state.items():
                yield f"{path}.{name}", value


def _own_state(obj: object) -> object:
    """The attributes to look into: a worker's picklable state, or an object's __dict__ (another object's
    ``__getstate__`` may refuse, or have side effects)."""
    from .._worker import AbstractWorker

    if isinstance(obj, AbstractWorker):
        return obj.__getstate__()
    return getattr(obj, "__dict__", None)


def find_unpicklable(obj: object, path: str = "self") -> tuple[str, str] | None:
    """Return ``(path, error)`` for the deepest part of `obj` that does not pickle, or None."""
    try:
        pickle_for_child(obj)
    except Exception as exc:
        return _deepest_failure(obj, path, f"{type(exc).__name__}: {exc}", 0)
    return None


def _deepest_failure(obj: object, path: str, error: str, depth: int) -> tuple[str, str]:
    if depth < _MAX_DEPTH:
        for child_path, value in _children(obj, path):
            try:
                pickle_for_child(value)
            except Exception as exc:
                return _deepest_failure(value, child_path, f"{type(exc).__name__}: {exc}", depth + 1)
    return path, error


def find_thread_only(obj: object, path: str = "self") -> list[tuple[str, type]]:
    """Return ``(path, type)`` for every thread-only object reachable from `obj`'s attributes."""
    found: list[tuple[str, type]] = []
    seen: set[int] = set()

    def visit(value: object, at: str, depth: int) -> None:
        if id(value) in seen or depth > _MAX_DEPTH:
            return
        seen.add(id(value))
        if isinstance(value, _PLAIN_TYPES):
            return
        for thread_only in THREAD_ONLY_TYPES:
            if isinstance(value, thread_only):
                found.append((at, thread_only))
                return
        for child_path, child in _children(value, at):
            visit(child, child_path, depth + 1)

    for child_path, child in _children(obj, path):
        visit(child, child_path, 1)
    return found


def thread_only_advice(kind: type) -> str:
    """The `multiprocessing` replacement to suggest for a thread-only type."""
    for thread_only, advice in THREAD_ONLY_TYPES.items():
        if issubclass(kind, thread_only):
            return advice
    return "a multiprocessing object"
