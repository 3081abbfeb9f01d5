"""Where a sample goes: the tally of the worker it was counted in, found from the calling thread.

- In a process worker's child whose server exports metrics: the child's batch
  (`start_child`), flushed to the server as records; made at the child's
  first sample, so that a child that counts nothing starts no flusher.
- On a thread worker's thread, in the server's process: that worker's totals
  in its server's store (`attach`), directly; nothing to flush.
- Anywhere else (threads that are not a worker's, workers of servers without
  the plugin): a process-wide tally per worker name ("" outside any worker),
  which every Metrics endpoint of this process exports too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from spoc import AbstractWorker, current_worker

from ._tally import Tally

__all__ = ["attach", "child_batch", "detach", "loose_tallies", "start_child", "stop_child", "tally_here"]

_child: Tally | None = None
_first_sample: Callable[[], Tally] | None = None
"""In a process worker's child that has not counted yet: makes its batch (and its flusher) at the first sample."""
_first_lock = threading.Lock()
_attached: dict[int, Tally] = {}
_loose: dict[str, Tally] = {}
_loose_lock = threading.Lock()


def tally_here() -> Tally:
    """The tally that a sample counted on the calling thread belongs to."""
    child = _child
    if child is not None:
        return child
    if _first_sample is not None:
        return _start_batch()
    worker = current_worker()
    if worker is None:
        return _loose_tally("")
    tally = _attached.get(id(worker))
    return tally if tally is not None else _loose_tally(worker.name)


def _loose_tally(worker: str) -> Tally:
    tally = _loose.get(worker)
    if tally is None:
        with _loose_lock:
            tally = _loose.setdefault(worker, Tally())
    return tally


def loose_tallies() -> dict[str, Tally]:
    """The process-wide tallies of samples no server's store took, by worker name."""
    with _loose_lock:
        return dict(_loose)


def attach(worker: AbstractWorker, tally: Tally) -> None:
    """Samples counted in `worker`'s body in this process (a thread worker's) go to `tally` from now on."""
    _attached[id(worker)] = tally


def detach(worker: AbstractWorker) -> None:
    _attached.pop(id(worker), None)


def start_child(first_sample: Callable[[], None]) -> None:
    """In a process worker's child: every sample of this process goes to one batch (`child_batch`), made at
    the first sample, which also calls `first_sample()` (on the thread that counted it)."""
    global _first_sample

    def make() -> Tally:
        global _child
        _child = Tally()
        first_sample()
        return _child

    _first_sample = make


def _start_batch() -> Tally:
    global _first_sample
    with _first_lock:
        make, _first_sample = _first_sample, None
        if make is not None:
            return make()
    child = _child  # another thread made it meanwhile
    assert child is not None
    return child


def child_batch() -> Tally | None:
    """The child's batch, None before its first sample."""
    return _child


def stop_child() -> Tally | None:
    """Samples of this process no longer go to a batch; return the batch, None when nothing was counted."""
    global _child, _first_sample
    with _first_lock:
        child, _child, _first_sample = _child, None, None
    return child


def _forget_after_fork() -> None:
    """A forked process holds copies of the server's tallies: samples must not land in them."""
    global _child, _first_sample, _first_lock
    _child, _first_sample, _first_lock = None, None, threading.Lock()  # a lock held at the fork stays held
    _attached.clear()
    _loose.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
