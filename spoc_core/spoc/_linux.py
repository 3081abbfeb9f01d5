"""Linux process facts and controls spoc uses: the parent-death signal, the child subreaper, process titles,
the program's other threads, and the preload that makes forked children cheaper.

The prctl controls return False where they are not available, and every
caller has a fallback for that.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import time
from typing import Any

__all__ = [
    "is_single_threaded",
    "other_threads",
    "preload_for_children",
    "set_child_subreaper",
    "set_parent_death_signal",
    "set_process_title",
    "wait_until_thread_exited",
]

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
_PR_SET_CHILD_SUBREAPER = 36


@functools.lru_cache(maxsize=1)
def _prctl_function() -> Any:
    """libc's prctl, resolved once (the process's own symbols: no library search, no subprocess)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def preload_for_children() -> None:
    """Resolve prctl and setproctitle now, so that children forked later do not each do it again."""
    _prctl_function()
    _setproctitle_function()


@functools.lru_cache(maxsize=1)
def _setproctitle_function() -> Any:
    """setproctitle's function when it is installed, else None; looked up once (a failed import is not cached)."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return None
    return setproctitle


def _prctl(option: int, value: int) -> bool:
    prctl = _prctl_function()
    return prctl is not None and int(prctl(option, value, 0, 0, 0)) == 0


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send `signum` to this process when its parent *thread* exits.

    The kernel ties this to the thread that forked us, not to the parent
    process: call it only in a child forked from a long-lived thread.
    """
    return _prctl(_PR_SET_PDEATHSIG, signum)


def set_process_title(title: str) -> None:
    """Show `title` for this process in ``ps`` and ``top``.

    With setproctitle installed (``pip install spoc-core[proctitle]``), the
    whole command line becomes `title`; otherwise only the process name
    (``ps -o comm``, ``top``, ``/proc/<pid>/comm``), which the kernel cuts to
    15 bytes, is set with ``prctl(PR_SET_NAME)``.
    """
    setproctitle = _setproctitle_function()
    if setproctitle is not None:
        setproctitle(title)
        return
    prctl = _prctl_function()
    if prctl is not None:
        prctl(_PR_SET_NAME, ctypes.c_char_p(title.encode(errors="replace")[:15]), 0, 0, 0)


def set_child_subreaper() -> bool:
    """Make orphaned descendants of this process be reparented to it (Linux >= 3.4)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def is_single_threaded() -> bool:
    """Whether this process runs exactly one OS thread (native threads count too, as fork cares)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        import threading

        return threading.active_count() == 1


def other_threads() -> str | None:
    """The threads that make forking this process unsafe, for a message; None when there are none.

    Every OS thread but the caller's counts, native ones too, except
    multiprocessing's queue feeders (a forked child resets its queues, as
    multiprocessing's own fork relies on) and a finished Python thread that
    is still exiting (`wait_until_thread_exited`).
    """
    if is_single_threaded():
        return None
    import threading

    current = threading.current_thread()
    listed = [t for t in threading.enumerate() if t is not current]
    unsafe = [f"thread {t.name!r}" for t in listed if t.name != "QueueFeederThread"]
    known = {t.native_id for t in [current, *listed]}
    try:
        unlisted = [int(tid) for tid in os.listdir("/proc/self/task") if int(tid) not in known]
    except OSError:
        unlisted = []
    if not unsafe:  # only then can a thread that is exiting make the difference: one deadline for them all
        deadline = time.monotonic() + EXITING_THREAD_WAIT
        for tid in unlisted:
            wait_until_thread_exited(tid, max(0.0, deadline - time.monotonic()))
    native = sum(os.path.exists(f"/proc/self/task/{tid}") for tid in unlisted)
    if native:
        kind = "native thread" if native == 1 else "native threads"
        unsafe.append(f"{native} {kind} (not started with threading: by an extension module, or with _thread)")
    return ", ".join(unsafe) or None


EXITING_THREAD_WAIT = 0.1
"""Seconds `other_threads` gives the unlisted OS threads, all together, to be gone: an extension module's
native threads never go (23 of Ray's cost 2.3 s at every start while each had its own 0.1 s)."""


def wait_until_thread_exited(native_id: int | None, timeout: float = EXITING_THREAD_WAIT) -> None:
    """Wait (briefly) for an OS thread that Python no longer lists to be gone.

    Correctness: `Thread.join()` returns microseconds before the OS thread
    exits, and until then a server started right after another would not
    find the process single-threaded, its one safe moment to fork. No fd
    tells a thread's exit, so this yields the CPU until /proc no longer lists it.
    """
    if native_id is None:
        return
    path = f"/proc/self/task/{native_id}"
    deadline = time.monotonic() + timeout
    while os.path.exists(path) and time.monotonic() < deadline:
        os.sched_yield()
