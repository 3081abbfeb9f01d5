"""Records as data: what a stdlib `logging.LogRecord` becomes, and how one crosses from a child to the server.

In a process worker's child, a log record is written to fd 1 (the pipe the
server reads) as one frame: `FRAME_MARK`, the record's fields as JSON, a
newline. It then stays in order with what the worker prints, and the server
renders it in its own format, with its own fields. A frame written after a
partial line (text with no newline yet) ends that line.
"""

from __future__ import annotations

import json
import logging
import traceback
from types import TracebackType
from typing import Any

__all__ = [
    "EVENT_MARK",
    "FRAME_MARK",
    "STANDARD_ATTRIBUTES",
    "exception_fields",
    "frame_of",
    "log_record_fields",
    "parse_frame",
]

FRAME_MARK = b"\x1espoc-record\x1f"
"""Starts a log record's frame in a child's stdout: no text a program prints holds these bytes."""

EVENT_MARK = b"\x1espoc-event\x1f"
"""Starts the marker line a child writes to both pipes right before it sends a "startup" or "error" event."""

STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)
"""A LogRecord's own attributes: any other was given with ``extra=`` (or bound by a filter)."""


def exception_fields(
    kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
) -> dict[str, Any]:
    """An exception as data: ``type``, ``message``, ``frames`` (file, line, function, code; no locals)."""
    frames = [
        {"file": frame.filename, "line": frame.lineno, "function": frame.name, "code": frame.line}
        for frame in traceback.extract_tb(tb)
    ]
    name = (
        ""
        if kind is None
        else (kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}")
    )
    return {"type": name, "message": "" if value is None else str(value), "frames": frames}


def log_record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of `record`: timestamp, level, event (the message), logger, exception, then its extras."""
    try:
        message = record.getMessage()
    except Exception as exc:  # a bad format string in the program: say so rather than lose the record
        message = f"{record.msg!r} % {record.args!r} ({type(exc).__name__}: {exc})"
    fields: dict[str, Any] = {
        "timestamp": record.created,
        "level": record.levelname.lower(),
        "event": message,
        "logger": record.name,
    }
    if record.exc_info and record.exc_info[0] is not None:
        fields["exception"] = exception_fields(*record.exc_info)
    elif record.exc_text:
        fields["exception"] = {"type": "", "message": "", "traceback": record.exc_text}
    for key, value in vars(record).items():
        if key not in STANDARD_ATTRIBUTES and not key.startswith("spoc_"):
            fields[key] = value
    return fields


def frame_of(fields: dict[str, Any]) -> bytes:
    """A child's log record as the frame it writes to fd 2."""
    return FRAME_MARK + json.dumps(fields, default=repr, ensure_ascii=False).encode() + b"\n"


def parse_frame(line: bytes) -> dict[str, Any] | None:
    """The fields of a frame (a line starting with `FRAME_MARK`, newline removed), or None if it is torn."""
    try:
        fields = json.loads(line[len(FRAME_MARK) :])
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None
