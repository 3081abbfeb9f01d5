"""Forking a child that runs one function, and the handle on a child this process forked.

Both places that fork workers' children themselves (the server, while it is
still single-threaded, and its fork server) use `fork_and_run`. It does what
multiprocessing's fork start method does around the fork (flush the standard
streams before it; run multiprocessing's exit handlers and ``os._exit`` after
it, so the child never returns into the parent's code) and nothing more:
multiprocessing's own bootstrap (a Process object, stdin swapped for
/dev/null) costs a freshly forked child a third of its start-up time, mostly in
copy-on-write faults.
"""

from __future__ import annotations

import functools
import multiprocessing.connection
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable

from . import _fds

__all__ = [
    "ChildHandle",
    "DirectChild",
    "die_by_signal",
    "flush_std_streams",
    "pidfd",
    "pidfds_work",
    "fork_and_run",
    "readable",
    "run_multiprocessing_exit",
]

UNKNOWN_EXIT_CODE = 255
"""The exit code of a child that someone else reaped (``os.waitpid(-1)`` in user code)."""


def fork_and_run(child: Callable[[], int]) -> int:
    """Fork; in the child, run `child()` and exit with the code it returns. Return the child's pid.

    `child` first resets what the fork copied that the child must not keep
    (see `_child.reset_after_fork`). Whatever it raises is printed and ends
    the child with code 1; a negative code ends it by that signal.
    """
    flush_std_streams()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        code = child()
        run_multiprocessing_exit()
        if code < 0:
            die_by_signal(-code)
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def flush_std_streams() -> None:
    """Flush stdout and stderr, so that what is buffered is written once, not once per process."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def die_by_signal(signum: int) -> None:
    """End this process by `signum`'s default action, so that its parent sees it killed by that signal."""
    flush_std_streams()
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)


def run_multiprocessing_exit() -> None:
    """Do what multiprocessing does before a child exits: flush queues' feeder threads, run finalizers."""
    import multiprocessing.util as mp_util

    exit_function = getattr(mp_util, "_exit_function", None)
    if callable(exit_function):
        exit_function()


@functools.cache
def pidfds_work() -> bool:
    """Whether this kernel gives pidfds (Linux 5.3 and later)."""
    fd = pidfd(os.getpid())
    if fd is None:
        return False
    os.close(fd)
    return True


def pidfd(pid: int) -> int | None:
    """An fd that turns readable when process `pid` has exited, or None where the kernel has no pidfds.

    A child's death is read from the child itself, never from a pipe its own
    children may have inherited and keep open after it died.
    """
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def readable(fd: int, timeout: float | None) -> bool:
    """Wait up to `timeout` for `fd` to be readable (poll-based: any fd number, unlike select())."""
    return bool(multiprocessing.connection.wait([fd], timeout))


class ChildHandle:
    """What the server needs of a running child process, however it was made.

    Subclasses say how to `poll()`, `join()` and `close()`; liveness, the exit
    code and signals are read through `poll()` alike for all of them.
    """

    pid: int | None
    sentinel: int

    def __init__(self, pid: int | None, sentinel: int) -> None:
        self.pid = pid
        self.sentinel = sentinel
        self._exitcode: int | None = None
        self._closed = False
        # poll() is called from the monitor and from whoever stops or signals the worker (a signal handler
        # too, hence re-entrant): one of them reaps, and the others must see its code, never "reaped elsewhere".
        self._lock = threading.RLock()

    def poll(self) -> int | None:
        """The exit code once the child has ended, else None. Never blocks."""
        raise NotImplementedError

    def join(self, timeout: float | None = None) -> None:
        """Wait up to `timeout` seconds (None: for ever) for the child to end."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the handle holds (its sentinel) once the child has ended."""
        raise NotImplementedError

    def is_alive(self) -> bool:
        return self.poll() is None and not self._closed

    @property
    def exitcode(self) -> int | None:
        return self.poll()

    def send_signal(self, signum: int) -> None:
        """Signal the child while it runs (never a reaped child's pid, which may be reused)."""
        if self.poll() is None and self.pid is not None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass


class DirectChild(ChildHandle):
    """The handle on a child forked by this process: reaped by its pid, watched through its `sentinel`.

    The sentinel is the child's pidfd, or, on kernels without pidfds, the
    read end of a pipe whose write end only the child holds (a grandchild that
    inherits it then delays the news). Only this child's pid is ever waited for.
    """

    pid: int

    def poll(self) -> int | None:
        return self._wait(os.WNOHANG)

    def _wait(self, options: int) -> int | None:
        with self._lock:
            if self._exitcode is None and not self._closed:
                try:
                    pid, status = os.waitpid(self.pid, options)
                except ChildProcessError:  # someone else's waitpid(-1) took it (a re-entrant call stored it first)
                    if self._exitcode is None:
                        self._exitcode = UNKNOWN_EXIT_CODE
                else:
                    if pid and self._exitcode is None:
                        self._exitcode = os.waitstatus_to_exitcode(status)
            return self._exitcode

    def join(self, timeout: float | None = None) -> None:
        if self.poll() is None and not self._closed and readable(self.sentinel, timeout):
            self._wait(0)  # the child closed its end: it is exiting, if not yet a zombie

    def close(self) -> None:
        if not self._closed and self.poll() is not None:
            self._closed = True
            _fds.untrack(self.sentinel)
            os.close(self.sentinel)
