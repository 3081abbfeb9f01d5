"""What may travel to a child process: the unpicklable-attribute finder and the thread-only check.

When a worker cannot be pickled, pickle says "cannot pickle '_thread.lock'
object" and nothing more. spoc walks the worker's attributes to name the one
at fault (``self.jobs.mutex``). It also looks for objects that pickle or fork
fine but only ever work between threads of one process (`queue.Queue`,
`threading.Event` ...): on a ProcessWorker each side gets its own copy, and
nothing put on one side ever arrives on the other.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from multiprocessing import context as mp_context
from multiprocessing import reduction
from typing import Any

__all__ = ["THREAD_ONLY_TYPES", "find_thread_only", "find_unpicklable", "pickles"]

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


class _ChildSpawningPopen:
    """Stands in for a spawning Popen so multiprocessing objects agree to be pickled."""

    def duplicate_for_child(self, fd: int) -> int:
        return fd


def pickles(obj: object) -> bool:
    """Whether `obj` pickles as it would when sent to a spawned child."""
    try:
        _dump_for_child(obj)
    except Exception:
        return False
    return True


def _dump_for_child(obj: object) -> None:
    mp_context.set_spawning_popen(_ChildSpawningPopen())
    try:
        reduction.ForkingPickler(io.BytesIO()).dump(obj)
    finally:
        mp_context.set_spawning_popen(None)


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
    """The attributes to look into: a worker's picklable state, or a plain object's __dict__.

    Other objects' ``__getstate__`` is not called: it may refuse (multiprocessing
    objects outside spawning) or have side effects.
    """
    from ._worker import AbstractWorker

    if isinstance(obj, AbstractWorker):
        return obj.__getstate__()
    return getattr(obj, "__dict__", None)


def find_unpicklable(obj: object, path: str = "self") -> tuple[str, str] | None:
    """Return ``(path, error)`` for the deepest part of `obj` that does not pickle, or None."""
    try:
        _dump_for_child(obj)
    except Exception as exc:
        return _deepest_failure(obj, path, f"{type(exc).__name__}: {exc}", 0)
    return None


def _deepest_failure(obj: object, path: str, error: str, depth: int) -> tuple[str, str]:
    if depth < _MAX_DEPTH:
        for child_path, value in _children(obj, path):
            try:
                _dump_for_child(value)
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
        for thread_only in THREAD_ONLY_TYPES:
            if isinstance(value, thread_only):
                found.append((at, thread_only))
                return
        if isinstance(value, (str, bytes, int, float, bool, type(None))):
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
