"""The server's side of one child's output: the read ends of its stdout and stderr pipes, line by line.

The server's monitor thread reads each pipe when it is readable
(`spoc.WorkerChannel.watch`). A line is split out when its newline arrives,
however many reads it took (a 64 KiB line is one record); a line longer than
`max_line` bytes is written in parts of at most `max_line` bytes, every part
(the last one too) marked ``"partial": true`` and cut between two UTF-8
characters, so memory stays bounded. Log record frames (`_records.FRAME_MARK`) become records with their
own fields. Lines on stdout and on stderr keep their order within each
stream; which of two lines on the two streams came first is not known.

Order with the worker's events: right before the child sends its "startup" or
"error" event, the plugin writes a marker (`_records.EVENT_MARK`) to both
pipes. Lines read past a marker are held until the plugin has written that
event's record (`release`), so each line lands on the side of the event it
was written on, however the monitor's reads and the events interleave.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import spoc

from ._records import EVENT_MARK, FRAME_MARK, parse_frame

__all__ = ["RAW_LEVELS", "ChildOutput", "EmitLines", "split_line"]

_READ_SIZE = 1 << 16
STREAMS = {1: "stdout", 2: "stderr"}
RAW_LEVELS = {"stdout": "info", "stderr": "warning"}
"""The level of a captured line: what a child prints to stderr is more often a warning than not."""
HELD_BYTES = 4 << 20
"""Bytes of lines held past a marker whose event has not been handled, at most."""

Emit = Callable[[list[dict[str, Any]]], None]
EmitLines = Callable[["ChildOutput", str, list[str], float], None]
"""Writes plain captured lines of one stream at once: (output, stream, lines, arrival time)."""


class _Pipe:
    """One of the child's streams: the part of a line read so far, and the items held past a marker."""

    def __init__(self, fd: int, stream: str) -> None:
        self.fd = fd
        self.stream = stream
        self.partial = bytearray()
        self.held: deque[dict[str, Any] | str] = deque()  # records, and markers (the event's kind)
        self.held_bytes = 0
        self.open = True
        self.continued = False  # the line being read has been written in parts already


class ChildOutput:
    """One run of a process worker: its captured pipes, and the last lines it wrote (`tail`)."""

    def __init__(
        self,
        worker: spoc.AbstractWorker,
        server: str,
        channel: spoc.WorkerChannel,
        emit: Emit,
        tail: int,
        max_line: int,
    ) -> None:
        self.worker = worker
        self.server = server
        self.channel = channel
        self.tail: deque[str] = deque(maxlen=tail)
        self._emit = emit
        self.emit_lines: EmitLines | None = None
        """Set by the plugin when its format renders plain lines in bulk (json)."""
        self._max_line = max_line
        self._pipes: dict[int, _Pipe] = {}  # by read end; an ended one stays until close() (it may hold lines)
        self._lock = threading.Lock()  # the monitor reads, and a lifecycle record drains, one at a time

    @property
    def pid(self) -> int | None:
        """The child's pid (known once it has been started)."""
        return getattr(self.worker, "pid", None)

    def pipe_for(self, number: int) -> int:
        """A new pipe for the child's fd `number`: watch its read end, return its write end (for the child)."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(read_end, False)
        self._pipes[read_end] = _Pipe(read_end, STREAMS[number])
        self.channel.watch(read_end, lambda: self._on_readable(read_end))
        return write_end

    def _on_readable(self, fd: int) -> None:
        with self._lock:
            self._read(self._pipes[fd], once=True)

    def drain(self) -> None:
        """Read what both pipes hold now; write the lines up to the next marker."""
        with self._lock:
            for pipe in self._pipes.values():
                self._read(pipe)

    def release(self) -> None:
        """The event of the first marker has been written: write what each pipe held after it, up to the next."""
        with self._lock:
            for pipe in self._pipes.values():
                if pipe.held and isinstance(pipe.held[0], str):
                    pipe.held.popleft()
                self._pass(pipe, to_marker=True)

    def close(self) -> None:
        """Drain, write everything held and the last partial lines, and stop reading (the worker has ended)."""
        with self._lock:
            for pipe in self._pipes.values():
                self._read(pipe)
                self._end(pipe)
                self._pass(pipe, to_marker=False)

    def _read(self, pipe: _Pipe, once: bool = False) -> None:
        while pipe.open:
            try:
                data = os.read(pipe.fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._end(pipe)
                return
            self._take(pipe, data)
            if once and len(data) < _READ_SIZE:
                return

    def _take(self, pipe: _Pipe, data: bytes) -> None:
        partial = pipe.partial
        partial += data
        end = partial.rfind(b"\n")
        items: list[dict[str, Any] | str] = []
        now = time.time()
        if end >= 0:
            block = bytes(partial[:end])
            del partial[: end + 1]
            fast = not pipe.held and not pipe.continued and len(block) <= self._max_line  # no line is too long
            if self.emit_lines is not None and fast and b"\x1e" not in block:
                # Throughput: plain lines with nothing held before them are decoded and rendered in one go, not
                # one record at a time (lines per second: 0.33x a raw pipe one at a time).
                texts = block.decode(errors="replace").split("\n")
                self.tail.extend(texts[-self.tail.maxlen :] if self.tail.maxlen else ())
                self.emit_lines(self, pipe.stream, texts, now)
                block = b""
            lines = block.split(b"\n") if block else []
            for line in lines:
                text, mark, frame = line.partition(FRAME_MARK)
                if mark and text:  # a frame written after a partial line: the line ends there
                    self._line(pipe, text, now, items)
                    line = mark + frame
                self._line(pipe, line, now, items)
        while len(partial) > self._max_line:  # a line too long to hold: its parts so far, each whole
            cut = _cut(partial, self._max_line)
            items.append(self._item(pipe, bytes(partial[:cut]), now, partial_line=True))
            del partial[:cut]
            pipe.continued = True
        if items:
            self._hold_or_write(pipe, items)

    def _line(self, pipe: _Pipe, line: bytes, now: float, items: list[dict[str, Any] | str]) -> None:
        """A whole line's items: itself, or its parts when it is longer than `max_line` or ends a line begun in
        parts."""
        if not pipe.continued and len(line) <= self._max_line:
            items.append(self._item(pipe, line, now))
            return
        pipe.continued = False
        items.extend(self._item(pipe, part, now, partial_line=True) for part in split_line(line, self._max_line))

    def _hold_or_write(self, pipe: _Pipe, items: list[dict[str, Any] | str]) -> None:
        """Write the records before the first marker, hold the rest."""
        pipe.held.extend(items)
        for item in items:
            if isinstance(item, dict):
                pipe.held_bytes += len(item["event"])
        if pipe.held_bytes > HELD_BYTES:  # an event that never came: order is given up for bounded memory
            self._pass(pipe, to_marker=False)
        else:
            self._pass(pipe, to_marker=True)

    def _pass(self, pipe: _Pipe, to_marker: bool) -> None:
        """Write the held records, up to the first marker when `to_marker`, else all (dropping the markers)."""
        held = pipe.held
        records: list[dict[str, Any]] = []
        while held:
            item = held[0]
            if isinstance(item, str):
                if to_marker:
                    break
                held.popleft()
                continue
            held.popleft()
            pipe.held_bytes -= len(item["event"])
            self.tail.append(item["event"])
            records.append(item)
        if records:
            self._emit(records)

    def _end(self, pipe: _Pipe) -> None:
        """The pipe is at its end (or the worker has ended): stop reading; its last partial line is a line."""
        if not pipe.open:
            return
        pipe.open = False
        self.channel.unwatch(pipe.fd)
        os.close(pipe.fd)
        if pipe.partial:
            self._hold_or_write(pipe, [self._item(pipe, bytes(pipe.partial), time.time(), pipe.continued)])
            pipe.partial.clear()

    def _item(self, pipe: _Pipe, line: bytes, now: float, partial_line: bool = False) -> dict[str, Any] | str:
        if not partial_line:  # a part of a long line is text, whatever its first bytes
            if line.startswith(EVENT_MARK):
                return line[len(EVENT_MARK) :].decode(errors="replace")
            fields = parse_frame(line) if line.startswith(FRAME_MARK) else None
            if fields is not None:
                event = str(fields.pop("event", ""))
                return {
                    "timestamp": fields.pop("timestamp", now),
                    "level": fields.pop("level", "info"),
                    "event": event,
                    "worker": self.worker.name,
                    "pid": self.pid,
                    "server": self.server,
                    **fields,
                }
        record: dict[str, Any] = {
            "timestamp": now,
            "level": RAW_LEVELS[pipe.stream],
            "event": line.decode(errors="replace"),
            "worker": self.worker.name,
            "pid": self.pid,
            "server": self.server,
            "stream": pipe.stream,
        }
        if partial_line:
            record["partial"] = True
        return record


def _cut(data: bytes | bytearray, limit: int) -> int:
    """Where to cut `data` (longer than `limit`) for a first part of at most `limit` bytes: at `limit`, or up to
    three bytes before it, so that no UTF-8 character is cut in two (a part decodes on its own)."""
    for cut in range(limit, max(0, limit - 3), -1):
        if data[cut] & 0xC0 != 0x80:  # not a continuation byte: a character starts here
            return cut
    return limit


def split_line(line: bytes, limit: int) -> list[bytes]:
    """`line` in parts of at most `limit` bytes, none cutting a UTF-8 character in two (empty: none)."""
    parts = []
    while len(line) > limit:
        cut = _cut(line, limit)
        parts.append(line[:cut])
        line = line[cut:]
    if line:
        parts.append(line)
    return parts
