"""The one writer of a destination: whole lines, in the order they were handed over, never blocking a server.

Every line of every worker of every server in the process that goes to one
destination (fd 1 by default) passes through its `Writer`. While a server
runs, a helper thread does the writing: the server's monitor thread, which
reads the children's pipes, only hands lines over, so a destination that is
slow or stuck (a full pipe nobody reads) never holds up the events, the
signals or the shutdown. What does not fit in the writer's buffer then is
dropped, counted, and reported once the destination takes lines again.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

import spoc

__all__ = ["DEFAULT_BUFFER", "Writer", "writer_for"]

DEFAULT_BUFFER = 8 << 20
"""Bytes waiting for a slow destination before lines are dropped."""


class Writer:
    """Writes lines to `fd` (see the module docstring); `report_dropped(n)` renders the line that says n were."""

    def __init__(self, fd: int, buffer: int = DEFAULT_BUFFER) -> None:
        self.fd = fd
        self.buffer = buffer
        self.dropped = 0
        """Lines dropped so far because the destination did not keep up."""
        self.report_dropped: Callable[[int], bytes] | None = None
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._unreported = 0
        self._busy = False
        self._changed = threading.Condition(threading.Lock())
        self._users = 0
        self._thread: threading.Thread | None = None

    def write(self, data: bytes, lines: int = 1) -> None:
        """Hand over `lines` whole lines; written at once while no server runs (no helper thread)."""
        with self._changed:
            if self._thread is None:
                self._write_out(data)
                return
            if self._pending_bytes + len(data) > self.buffer:
                self.dropped += lines
                self._unreported += lines
                return
            self._pending.append(data)
            self._pending_bytes += len(data)
            self._changed.notify()

    def _write_out(self, data: bytes) -> None:
        try:
            for piece in _pieces(data):
                while piece:
                    piece = piece[os.write(self.fd, piece) :]
        except OSError:  # the destination is gone (a closed pipe): nothing can be written any more
            pass

    # ------------------------------------------------------------------ the helper thread, while servers run

    def open(self) -> None:
        """A server starts using this writer (call when it has started: its children are forked by then)."""
        with self._changed:
            self._users += 1
            if self._thread is not None:
                return
            self._thread = spoc.start_helper_thread(self._run, f"spoc-logging-writer:{self.fd}")

    def close(self, deadline: float) -> int:
        """A server stops using this writer: the last one waits until `deadline` (monotonic) for what is pending
        to be written, then the helper thread ends. Return how many lines were dropped and not yet said (the
        destination did not take them in time): the caller says it elsewhere."""
        with self._changed:
            self._users -= 1
            if self._users > 0 or self._thread is None:
                return 0
            while (self._pending or self._busy) and time.monotonic() < deadline:
                self._changed.wait(max(0.0, deadline - time.monotonic()))
            unsaid = self._unreported + sum(data.count(b"\n") for data in self._pending)
            self.dropped += unsaid - self._unreported
            self._unreported = 0
            self._pending.clear()
            self._pending_bytes = 0
            thread, self._thread = self._thread, None
            self._changed.notify_all()
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
        return unsaid

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._changed:
                while not self._pending and self._thread is me:
                    self._changed.wait()
                if self._thread is not me:
                    return
                chunks = list(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
                unreported, self._unreported = self._unreported, 0
                self._busy = True
            if unreported and self.report_dropped is not None:
                chunks.append(self.report_dropped(unreported))
            self._write_out(b"".join(chunks))
            with self._changed:
                self._busy = False
                self._changed.notify_all()


def _pieces(data: bytes) -> Iterator[memoryview]:
    """`data` in runs of whole lines of at most PIPE_BUF bytes (a longer line alone): a write to a pipe of that
    size is all or nothing, so a process that ends while its writer waits on a full pipe leaves no torn line."""
    view = memoryview(data)
    start, size = 0, len(data)
    while start < size:
        end = start + select.PIPE_BUF
        if end >= size:
            yield view[start:]
            return
        cut = data.rfind(b"\n", start, end)
        if cut < 0:  # a line longer than a piece
            cut = data.find(b"\n", end)
            if cut < 0:
                yield view[start:]
                return
        yield view[start : cut + 1]
        start = cut + 1


_writers: dict[int, Writer] = {}
_writers_lock = threading.Lock()


def writer_for(fd: int) -> Writer:
    """The process's one writer of `fd`."""
    with _writers_lock:
        writer = _writers.get(fd)
        if writer is None:
            writer = _writers[fd] = Writer(fd)
        return writer
