"""What the plugin changes in the server's process while a server it serves runs, and undoes after the last.

- ``sys.stdout`` and ``sys.stderr`` become `WorkerStream` s: text a thread
  worker writes (``print``, or bytes to ``sys.stdout.buffer``) is split into
  lines attributed to the worker the writing code belongs to
  (`spoc.current_worker`); any other text goes where it went before, through
  the plugin's writer when that is where the plugin writes its stream, so
  that it keeps its place and the plugin's records start lines of their own.
- The root logger gets one `ServerLogHandler`, and the handlers that wrote to
  the process's stdout or stderr (``spoc run``'s, ``logging.basicConfig``'s)
  step aside, so every record is written once, in the plugin's format.
- structlog, when installed and not configured by the program, hands its
  events to `logging` (`_structlog`).
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

import spoc

from . import _structlog

__all__ = [
    "ServerLogHandler",
    "WorkerBuffer",
    "WorkerStream",
    "forget_in_child",
    "install",
    "is_console_handler",
    "uninstall",
]

Route = Callable[[spoc.AbstractWorker], Any]
RouteOther = Callable[[TextIO], Any]
"""The plugin whose stream goes where a stream writes (text no worker wrote goes through its writer), or None."""


class WorkerStream(io.TextIOBase):
    """Stands for ``sys.stdout`` or ``sys.stderr``: a thread worker's text goes to `route(worker)`'s plugin; other
    text to `route_other(original)`'s, else to `original`."""

    def __init__(self, original: TextIO, stream: str, route: Route, route_other: RouteOther) -> None:
        self.original = original
        self.stream = stream
        self._route = route
        self._route_other = route_other
        original_buffer = getattr(original, "buffer", None)
        self._buffer = WorkerBuffer(self, original_buffer) if original_buffer is not None else None

    def write(self, text: str) -> int:
        self._hand_over(text)
        return len(text)

    def _hand_over(self, data: str | bytes) -> None:
        """`data` (text, or bytes written to `buffer`) to the plugin it belongs to, else where it went before."""
        worker = spoc.current_worker()
        plugin = self._route(worker) if worker is not None else None
        if plugin is not None:
            plugin.thread_text(worker, self.stream, data)
            return
        plugin = self._route_other(self.original)
        if plugin is not None and plugin.other_text(self.original, data):
            return
        if isinstance(data, str):
            self.original.write(data)
        else:
            self.original.flush()  # what it buffered comes first
            self.original.buffer.write(data)

    def flush(self) -> None:
        self.original.flush()

    def fileno(self) -> int:
        return self.original.fileno()

    def isatty(self) -> bool:
        return self.original.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")

    @property
    def buffer(self) -> Any:
        return self._buffer


class WorkerBuffer(io.BufferedIOBase):
    """Stands for ``sys.stdout.buffer`` or ``sys.stderr.buffer``: bytes go where the stream's text would."""

    def __init__(self, stream: WorkerStream, original: Any) -> None:
        self._stream = stream
        self.original = original

    def write(self, data: Any) -> int:
        data = bytes(data)
        self._stream._hand_over(data)
        return len(data)

    def flush(self) -> None:
        self.original.flush()

    def fileno(self) -> int:
        return int(self.original.fileno())

    def isatty(self) -> bool:
        return bool(self.original.isatty())

    def writable(self) -> bool:
        return True

    @property
    def raw(self) -> Any:
        return self.original.raw


class ServerLogHandler(logging.Handler):
    """The root logger's handler in the server's process: each record goes to `route(record)`'s plugin; one
    that plugin cannot write (its stream's destination failed) goes to the handlers set aside (stderr), so
    that the server's own lines, its closing line among them, are still seen."""

    def __init__(self, route: Callable[[logging.LogRecord], Any]) -> None:
        super().__init__()
        self._route = route

    def emit(self, record: logging.LogRecord) -> None:
        try:
            plugin = self._route(record)
            if plugin is None or plugin.log_record(record):
                return
            for handler in _installed.set_aside:
                if record.levelno >= handler.level:
                    handler.handle(record)
        except Exception:
            self.handleError(record)


def is_console_handler(handler: logging.Handler) -> bool:
    """Whether `handler` writes to the process's stdout or stderr."""
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    stream = handler.stream
    if isinstance(stream, WorkerStream):
        return True
    try:
        return stream.fileno() in (1, 2)
    except (AttributeError, OSError, ValueError):
        return stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)


class _Installed:
    def __init__(self) -> None:
        self.users = 0
        self.streams: tuple[TextIO, TextIO] | None = None
        self.handler: ServerLogHandler | None = None
        self.set_aside: list[logging.Handler] = []


_installed = _Installed()
_lock = threading.Lock()


def install(route_text: Route, route_other: RouteOther, route_record: Callable[[logging.LogRecord], Any]) -> None:
    """A server the plugin serves starts: the first one puts the streams and the handler in place."""
    with _lock:
        _installed.users += 1
        if _installed.users > 1:
            return
        _installed.streams = (sys.stdout, sys.stderr)
        sys.stdout = WorkerStream(sys.stdout, "stdout", route_text, route_other)
        sys.stderr = WorkerStream(sys.stderr, "stderr", route_text, route_other)
        root = logging.getLogger()
        _installed.set_aside = [h for h in root.handlers if is_console_handler(h)]
        for handler in _installed.set_aside:
            root.removeHandler(handler)
        _installed.handler = ServerLogHandler(route_record)
        root.addHandler(_installed.handler)
        _structlog.configure()


def uninstall() -> None:
    """A server the plugin serves has stopped: after the last one, the process is as it was."""
    with _lock:
        _installed.users -= 1
        if _installed.users > 0:
            return
        streams, _installed.streams = _installed.streams, None
        if streams is not None:
            if isinstance(sys.stdout, WorkerStream):
                sys.stdout = streams[0]
            if isinstance(sys.stderr, WorkerStream):
                sys.stderr = streams[1]
        root = logging.getLogger()
        if _installed.handler is not None:
            root.removeHandler(_installed.handler)
            _installed.handler = None
        for handler in _installed.set_aside:
            root.addHandler(handler)
        _installed.set_aside = []
        _structlog.reset()


def forget_in_child() -> list[logging.Handler]:
    """In a forked child: the server's streams back in place, the server's handlers gone; return the console
    handlers it inherited (they would write the child's records a second time, as text). No lock: one
    another thread of the server held at the fork would never be released here."""
    _installed.users = 0
    streams, _installed.streams = _installed.streams, None
    if streams is not None:
        sys.stdout, sys.stderr = streams
    root = logging.getLogger()
    if _installed.handler is not None:
        root.removeHandler(_installed.handler)
        _installed.handler = None
    _installed.set_aside = []
    return [h for h in root.handlers if is_console_handler(h)]
