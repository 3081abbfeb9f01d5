"""How the parent waits on a child process and reads its exit code, whoever made it.

`DirectChild` (forked here, reaped by pid), `MultiprocessingChild` (spawn,
forkserver) and `ForkedChild` (made by the fork server; its exit code comes on
the status pipe). A death is read from the child's pidfd where the kernel has
them, never from a pipe its own children may hold open.
"""

from __future__ import annotations

import functools
import multiprocessing.process
import os
import signal
import struct
import threading

from .. import _fds
from .._poll import readable

__all__ = [
    "STATUS",
    "ChildRunner",
    "DirectChild",
    "ForkedChild",
    "MultiprocessingChild",
    "forget_in_multiprocessing",
    "pidfd",
    "pidfds_work",
    "read_exactly",
]

STATUS = struct.Struct("!i")
"""How the fork server writes a child's exit code on its status pipe."""

UNKNOWN_EXIT_CODE = 255
"""The exit code of a child that someone else reaped (``os.waitpid(-1)`` in user code)."""


@functools.cache
def pidfds_work() -> bool:
    """Whether this kernel gives pidfds (Linux 5.3 and later)."""
    fd = pidfd(os.getpid())
    if fd is None:
        return False
    os.close(fd)
    return True


def pidfd(pid: int) -> int | None:
    """An fd that turns readable when process `pid` has exited, or None where the kernel has no pidfds."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class ChildRunner:
    """What the server needs of a running child process, however it was made: subclasses say how to `poll()`,
    `join()` and `close()`, and the rest goes through `poll()`."""

    pid: int | None
    sentinel: int
    lost: str | None = None
    """Why the server could not learn how the child ended, and ended it (None: it could)."""

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
        """Release what the runner holds (its sentinel) once the child has ended."""
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


class DirectChild(ChildRunner):
    """A child forked by this process: reaped by its pid, watched through its `sentinel` (its pidfd, or without
    pidfds a pipe whose write end only the child holds)."""

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


class MultiprocessingChild(ChildRunner):
    """A child made by multiprocessing (spawn or forkserver)."""

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        forget_in_multiprocessing(process)
        assert process.pid is not None
        # The child's own pidfd: multiprocessing's sentinel for spawn is a pipe its children may inherit.
        self._pidfd = pidfd(process.pid)
        super().__init__(process.pid, process.sentinel if self._pidfd is None else _fds.track(self._pidfd))
        self.process = process

    def poll(self) -> int | None:
        with self._lock:
            if self._exitcode is None and not self._closed:
                self._exitcode = self.process.exitcode  # a waitpid, or the fork server's report: never blocks
            return self._exitcode

    def join(self, timeout: float | None = None) -> None:
        if not self._closed and self.poll() is None and readable(self.sentinel, timeout) and self.poll() is None:
            self.process.join(1.0)  # a forkserver child: its fork server reports it once it has reaped it
            self.poll()

    def close(self) -> None:
        if not self._closed and self.poll() is not None:
            self._closed = True
            self.process.close()
            if self._pidfd is not None:
                _fds.untrack(self._pidfd)
                os.close(self._pidfd)


class ForkedChild(ChildRunner):
    """The server's runner on a child forked by the fork server (not the server's own child)."""

    pid: int

    def poll(self) -> int | None:
        """The exit code once the fork server has reported it, else None. Never blocks."""
        with self._lock:  # one reader of the status pipe at a time
            if self._exitcode is None and not self._closed and readable(self.sentinel, 0):
                data = read_exactly(self.sentinel, STATUS.size)
                if len(data) == STATUS.size:
                    self._exitcode = STATUS.unpack(data)[0]
                else:
                    self._exitcode = self._lost()
            return self._exitcode

    def _lost(self) -> int:
        """The fork server vanished without reporting: kill the child we can no longer watch."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.lost = (
            "its fork server died, and with it the only way to learn how the child ends: the server sent it SIGKILL"
        )
        return -signal.SIGKILL

    def join(self, timeout: float | None = None) -> None:
        if self.poll() is None and not self._closed:
            readable(self.sentinel, timeout)
            self.poll()

    def close(self) -> None:
        if not self._closed:
            self.poll()
            self._closed = True
            _fds.untrack(self.sentinel)
            os.close(self.sentinel)


def read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def forget_in_multiprocessing(process: multiprocessing.process.BaseProcess) -> None:
    """spoc joins its children itself: keep multiprocessing's exit handler from joining them too (marking them
    daemonic instead would forbid a worker to start processes of its own)."""
    children = getattr(multiprocessing.process, "_children", None)
    if isinstance(children, set):
        children.discard(process)
