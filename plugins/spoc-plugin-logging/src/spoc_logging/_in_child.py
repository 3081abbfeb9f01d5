"""The plugin's part inside a process worker's child: line-buffered streams, log records as frames, faulthandler.

The child's fd 1 and 2 are the pipes the server reads (`worker_stdio`). Here
``sys.stdout`` becomes line-buffered, so that a line printed is in the pipe
before the next statement runs (a SIGKILL loses no printed line); the root
logger writes each record to the stdout pipe as a frame of data (`_records`),
in order with what the worker prints; and faulthandler writes a crash's stack
to fd 2.

The plugin's own bytes (record frames, event markers) go only into the pipes
it installed, through copies of their write ends kept at fd numbers of their
own (`Pipe`): a worker that points fd 1 at its own file (``os.dup2``) finds
in it only what it wrote, and a copy whose fd number the worker closed and
reused is not written to.
"""

from __future__ import annotations

import faulthandler
import fcntl
import io
import logging
import os
import stat
import sys
import threading
from typing import Any

import spoc

from . import _structlog
from ._process_hooks import forget_in_child
from ._records import EVENT_MARK, frame_of, log_record_fields
from ._writer import file_of

__all__ = ["ChildLogHandler", "Pipe", "flush_streams", "mark_event", "prepare_child"]

LEVEL_ENV = "SPOC_LOG_LEVEL"
"""The level a child whose logging nobody configured logs at (``spoc run --log-level`` sets it); default INFO."""

MARKED_KINDS = frozenset({"startup", "error"})
"""The events whose records the plugin writes: each line must land on its side of them."""


class Pipe:
    """A pipe the server reads, installed at fd `number` (1, 2): a copy of its write end at an fd of its own."""

    def __init__(self, number: int) -> None:
        if not stat.S_ISFIFO(os.fstat(number).st_mode):
            raise OSError(f"fd {number} is not a pipe")
        self.fd = fcntl.fcntl(number, fcntl.F_DUPFD_CLOEXEC, 3)
        self.file = file_of(self.fd)

    def write(self, data: bytes) -> bool:
        """Write all of `data` into the pipe; False (nothing written) when the copy is gone: the worker closed its
        fd (daemon-style code closes what it inherited), perhaps to open something else at that number."""
        if file_of(self.fd) != self.file:
            return False
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        return True


_pipes: dict[int, Pipe] = {}
"""The pipes the plugin installed in this child, by fd number."""


class ChildLogHandler(logging.Handler):
    """Writes each record to the stdout pipe as a frame, in order with what the worker prints (to stderr as a
    line of text, when the worker has closed the pipe's copy)."""

    def __init__(self) -> None:
        super().__init__()
        self._write_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = frame_of(log_record_fields(record))
            with self._write_lock:
                _flush(sys.stdout)  # what the worker printed before the record comes first
                pipe = _pipes.get(1)
                written = pipe is not None and pipe.write(data)
            if not written:  # the worker closed the pipe's copy: the record as a line on stderr, not lost
                sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def _flush(stream: Any) -> None:
    try:
        if stream is not None:
            stream.flush()
    except (OSError, ValueError):
        pass


def _line_buffered(stream: Any, fd: int) -> Any:
    """`stream` line-buffered when it writes to `fd`; else a new line-buffered text stream on `fd`."""
    try:
        if isinstance(stream, io.TextIOWrapper) and stream.fileno() == fd:
            stream.reconfigure(line_buffering=True)
            return stream
    except (OSError, ValueError):
        pass
    _flush(stream)
    return open(fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)


def prepare_child(worker: spoc.AbstractWorker) -> None:
    """In the child, before the worker's setup (see the module docstring)."""
    inherited = forget_in_child()
    for number in (1, 2):
        try:
            _pipes[number] = Pipe(number)
        except OSError:  # not the plugin's pipe (it installs one at both): nothing of its own is written there
            _pipes.pop(number, None)
    root = logging.getLogger()
    if not root.handlers and root.level == logging.WARNING:  # a fresh interpreter's logging (spawn, forkserver)
        level = os.environ.get(LEVEL_ENV, "").strip().upper()
        try:
            root.setLevel(int(level) if level.isdigit() else level or logging.INFO)
        except ValueError:  # spoc run has checked it: one from elsewhere that means nothing leaves INFO
            root.setLevel(logging.INFO)
    for handler in inherited:
        root.removeHandler(handler)
    if not any(isinstance(h, ChildLogHandler) for h in root.handlers):
        root.addHandler(ChildLogHandler())
    sys.stdout = _line_buffered(sys.stdout, 1)
    sys.stderr = _line_buffered(sys.stderr, 2)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    _structlog.bind_in_child(worker)


def mark_event(kind: str) -> None:
    """Right before the child sends event `kind`: the marker, after what the streams buffered, in both pipes."""
    if kind not in MARKED_KINDS:
        return
    _flush(sys.stdout)
    _flush(sys.stderr)
    marker = EVENT_MARK + kind.encode() + b"\n"
    for pipe in _pipes.values():
        try:
            pipe.write(marker)
        except OSError:
            pass


def flush_streams() -> None:
    """What the streams buffered, into the pipes (the worker has ended)."""
    _flush(sys.stdout)
    _flush(sys.stderr)
