"""The one writer of a destination: whole lines, in the order they were handed over, never blocking a server.

Every line of every worker of every server in the process that goes to one
destination (fd 1 by default) passes through its `Writer`. A line is written
at once, on the thread that hands it over, as long as the destination takes
it without waiting. What it does not take goes to a buffer, which a helper
thread writes, and which every later line joins until it is empty, to keep
the order. The helper thread starts with the first line that would wait, and
ends when the last server using the writer stops: a destination that keeps up
(a terminal, a file, journald's pipe) never has one. So the server's monitor
thread, which reads the children's pipes, never waits on a slow or stuck
destination (a full pipe nobody reads): the events, the signals and the
shutdown go on. What does not fit in the buffer is dropped, counted, and said
once the destination takes lines again.

A destination that fails for good (its reader closed the pipe: EPIPE; a full
disk; any write error but "would block") is written to no more: the writer
says so once at once (`report_gone`, on stderr), and counts the lines it
drops from then on (`lost`), for the server to say at its stop.

Text that is no record (the program's own ``print`` to the same file, a
thread no worker owns) is handed over too (`write_text`), so that it keeps
its place among the records; a record handed over after text that left its
line open starts on a line of its own.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

import spoc

__all__ = ["DEFAULT_BUFFER", "Writer", "file_of", "writer_for"]

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
        self.report_gone: Callable[[OSError], None] | None = None
        """Says, once, that the destination failed for good (called with the writer's lock held)."""
        self.gone: OSError | None = None
        """The error with which the destination failed for good, if it did."""
        self._gone_file: tuple[int, int] | None = None  # what the fd was then: the fd may later be another file
        self.lost = 0
        """Lines dropped since the destination failed, not yet said (`take_lost`)."""
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._unreported = 0
        self._busy = False
        self._open_line = False  # the text handed over last did not end its line
        self._changed = threading.Condition(threading.Lock())
        self._users = 0
        self._thread: threading.Thread | None = None
        self._poll = select.poll()
        self._poll.register(fd, select.POLLOUT)

    def write(self, data: bytes, lines: int = 1) -> None:
        """Hand over `lines` whole lines of records, each to start on a line of its own (see the module
        docstring)."""
        with self._changed:
            self._hand_over(self._lead(), data, lines)

    def write_text(self, data: bytes) -> None:
        """Hand over text that is no record, in its place among the records, as it is."""
        if not data:
            return
        with self._changed:
            self._hand_over(b"", data, data.count(b"\n"))
            self._open_line = not data.endswith(b"\n")

    def _lead(self) -> bytes:
        """What a record handed over now starts with: a newline when the text before it left its line open."""
        lead, self._open_line = (b"\n" if self._open_line else b""), False
        return lead

    def _hand_over(self, lead: bytes, data: bytes, lines: int) -> None:
        """Write `lead` + `data` (`lines` lines), with the line that says what was dropped before `data`."""
        if self.gone is not None:
            self.dropped += lines
            self.lost += lines
            return
        if self._pending or self._busy:  # a backlog: behind it, to keep the order
            self._buffer(lead + data, lines)
            return
        if self._unreported and self.report_dropped is not None:
            report = lead + self.report_dropped(self._unreported)
            if self._may_wait():
                self._unreported = 0
                self._lose(self._write_out(report + data))
                return
            rest = self._write_now(report)
            if rest:  # not taken (a short line: nothing of it): the helper says it later
                self._open_line = rest == report and bool(lead)  # the lead not written: the line is still open
                self._buffer(self._lead() + data, lines)
                return
            self._unreported = 0
        else:
            data = lead + data
        # Delay per line: written here, a line is out at once, not after the helper thread's wake-up.
        rest = self._write_now(data)
        if rest:
            if self._may_wait():
                self._lose(self._write_out(rest))
            else:
                self._buffer(rest, rest.count(b"\n"))

    def _may_wait(self) -> bool:
        """Whether a line the destination does not take now is written by waiting for it, here: only with no
        helper thread, on the main thread, while no server using the writer has started (before its backends
        fork their children, the process must stay single-threaded). Otherwise the helper thread starts (a
        thread of the server waiting here could hold the plugins' lock that the main thread's next hook needs;
        the main thread waiting here would not handle the signals)."""
        if self._thread is not None:
            return False
        if self._users == 0 and threading.current_thread() is threading.main_thread():
            return True
        self._thread = spoc.start_helper_thread(self._run, f"spoc-logging-writer:{self.fd}")
        return False

    def _buffer(self, data: bytes, lines: int) -> None:
        if self._pending_bytes + len(data) > self.buffer:
            self.dropped += lines
            self._unreported += lines
            return
        if not self._pending and not self._busy:
            self._changed.notify()  # it waits: one wake-up for a backlog, not one per line
        self._pending.append(data)
        self._pending_bytes += len(data)

    def _write_now(self, data: bytes) -> bytes:
        """Write what the destination takes without waiting; return the rest (from a line's start, or the rest of a
        line longer than a pipe's atomic write that was begun)."""
        pieces = _pieces(data)
        for piece in pieces:
            if not self._poll.poll(0):
                return bytes(piece) + b"".join(pieces)
            try:
                written = os.write(self.fd, piece)
            except BlockingIOError:
                written = 0
            except OSError as exc:  # gone for good (a closed pipe, a full disk): nothing can be written any more
                self._lose((exc, bytes(piece) + b"".join(pieces)))
                return b""
            if written < len(piece):
                return bytes(piece[written:]) + b"".join(pieces)
        return b""

    def _write_out(self, data: bytes) -> tuple[OSError, bytes] | None:
        """Write `data`, waiting for the destination as long as it takes; the error and what was not written when
        the destination failed for good (for `_lose`, with the lock held)."""
        pieces = _pieces(data)
        for piece in pieces:
            try:
                while piece:
                    piece = piece[os.write(self.fd, piece) :]
            except OSError as exc:  # gone for good (a closed pipe, a full disk): nothing can be written any more
                return exc, bytes(piece) + b"".join(pieces)
        return None

    def _lose(self, failure: tuple[OSError, bytes] | None) -> None:
        """The destination failed for good (with the lock held): count the lines not written; say it, once."""
        if failure is None:
            return
        exc, data = failure
        lines = data.count(b"\n") or 1
        self.dropped += lines
        self.lost += lines
        if self.gone is None:
            self.gone = exc
            self._gone_file = file_of(self.fd)
            if self.report_gone is not None:
                self.report_gone(exc)

    def renew(self) -> None:
        """A server starts to use this writer: if the destination failed, and its fd number is now another file
        (closed, and opened again for something else), write to it again."""
        with self._changed:
            if self.gone is not None and self._users == 0 and file_of(self.fd) != self._gone_file:
                self.gone = None
                self._open_line = False

    def take_lost(self) -> int:
        """The lines dropped since the destination failed, not said yet; from now on, none."""
        with self._changed:
            lost, self.lost = self.lost, 0
            return lost

    # ------------------------------------------------------------------ the helper thread, while servers run

    def open(self) -> None:
        """A server starts using this writer (call when it has started: its children are forked by then, and a
        line that would wait starts the helper thread from now on)."""
        with self._changed:
            self._users += 1

    def close(self, deadline: float) -> int:
        """A server stops using this writer: the last one waits until `deadline` (monotonic) for what is pending
        to be written, then the helper thread ends. Return how many lines were dropped and not yet said (the
        destination did not take them in time): the caller says it elsewhere (and, when the destination failed
        for good, says `take_lost` lines)."""
        with self._changed:
            self._users = max(0, self._users - 1)  # 0: a server whose start failed after the helper started
            if self._users > 0 or self._thread is None:
                return 0
            while (self._pending or self._busy) and time.monotonic() < deadline:
                self._changed.wait(max(0.0, deadline - time.monotonic()))
            unsaid = self._unreported + sum(data.count(b"\n") for data in self._pending)
            self.dropped += unsaid - self._unreported
            self._unreported = 0
            self._pending.clear()
            report = self.report_dropped
            if unsaid and self.gone is None and not self._busy and report is not None:
                rest = self._write_now(self._lead() + report(unsaid))
                if not rest and self.gone is None:
                    unsaid = 0  # said here: the destination took it
            if self.gone is not None:  # never to be said there: the plugin says them with the failure
                self.lost += unsaid
                unsaid = 0
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
                lead = self._lead() if unreported else b""  # the report is handed over now, after every chunk
                self._busy = True
            if unreported and self.report_dropped is not None:
                chunks.append(lead + self.report_dropped(unreported))
            data = b"".join(chunks)
            failure = self._write_out(data) if self.gone is None else (self.gone, data)
            with self._changed:
                self._lose(failure)
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


def file_of(fd: int) -> tuple[int, int] | None:
    """Which file `fd` is (device and inode: a pipe's are its own), or None when it is closed."""
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_dev, info.st_ino


_writers: dict[int, Writer] = {}
_writers_lock = threading.Lock()


def writer_for(fd: int) -> Writer:
    """The process's one writer of `fd`."""
    with _writers_lock:
        writer = _writers.get(fd)
        if writer is None:
            writer = _writers[fd] = Writer(fd)
        writer.renew()
        return writer
