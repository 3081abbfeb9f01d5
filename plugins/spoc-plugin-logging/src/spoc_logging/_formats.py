"""The three formats a record is written in: ``json``, ``console`` and ``logfmt``.

A record is a dict of fields, in the order they are written: ``timestamp``
(seconds since the epoch, written ISO 8601 UTC), ``level``, ``event`` (the
message or the captured line), ``worker``, ``pid``, ``server``, ``logger``,
``stream``, then the rest (``exception``, ``tail``, a record's ``extra=``).
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring
from typing import Any

__all__ = ["FORMATS", "FORMAT_ENV", "Render", "choose_format", "iso_utc", "json_lines", "renderer"]

FORMATS = ("json", "console", "logfmt")
"""The formats, by the name `Logging`, ``SPOC_LOG_FORMAT`` and ``spoc run --log-format`` take."""

FORMAT_ENV = "SPOC_LOG_FORMAT"

Render = Callable[[Mapping[str, Any]], bytes]
"""Renders one record as one line (several for a console exception), newline included; a dict record is
rendered in place (its timestamp becomes text)."""

try:  # orjson, when installed, renders JSON 3-5x faster (the `fast` extra); typed Any, it may be absent
    orjson: Any = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None


def choose_format(given: str | None, destination: int) -> str:
    """`given`, else ``SPOC_LOG_FORMAT``, else ``console`` on a terminal and ``json`` otherwise.

    Raises ValueError naming the value and the choices.
    """
    name = given if given is not None else os.environ.get(FORMAT_ENV, "").strip()
    if not name:
        return "console" if os.isatty(destination) else "json"
    if name not in FORMATS:
        where = "Logging(format=...)" if given is not None else FORMAT_ENV
        raise ValueError(f"{where} is {name!r}: use one of {', '.join(FORMATS)}")
    return name


_second: list[Any] = [-1, ""]  # the last whole second rendered, and its text: most records share it


def iso_utc(timestamp: float) -> str:
    """``2026-11-27T23:10:00.123456Z``."""
    whole = int(timestamp)
    if whole != _second[0]:
        _second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second[0] = whole
    return f"{_second[1]}.{int((timestamp - whole) * 1e6):06d}Z"


def _with_iso_time(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """`record` with its timestamp as text, changed in place when it is a dict (records are made for one write)."""
    fields = record if isinstance(record, dict) else dict(record)
    fields["timestamp"] = iso_utc(record["timestamp"])
    return fields


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
"""Built once: json.dumps() with options builds an encoder per call, a third of a record's cost."""


def _json(record: Mapping[str, Any]) -> bytes:
    fields = _with_iso_time(record)
    if orjson is not None:
        rendered: bytes = orjson.dumps(fields, default=str, option=orjson.OPT_APPEND_NEWLINE)
        return rendered
    return (_ENCODER.encode(fields) + "\n").encode()


def json_lines(head: Mapping[str, Any], event: str, tail: Mapping[str, Any], lines: list[str]) -> bytes:
    """Many records that differ only in their `event` (captured lines), as `_json` renders each: `head`'s fields,
    the event, `tail`'s fields."""
    fields = dict(head)
    fields["timestamp"] = iso_utc(head["timestamp"])
    prefix = _ENCODER.encode(fields)[:-1] + f',"{event}":'
    suffix = "," + _ENCODER.encode(dict(tail))[1:]
    encode = encode_basestring
    return ("\n".join([prefix + encode(line) + suffix for line in lines]) + "\n").encode()


_LOGFMT_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/@+,[]()'")


def _logfmt_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if text and all(c in _LOGFMT_PLAIN for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _logfmt(record: Mapping[str, Any]) -> bytes:
    fields = _with_iso_time(record)
    return (" ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items()) + "\n").encode()


_COLOURS = {
    "debug": "\x1b[2m",
    "info": "\x1b[32m",
    "warning": "\x1b[33m",
    "error": "\x1b[31m",
    "critical": "\x1b[1;31m",
}
_RESET = "\x1b[0m"
_CONSOLE_OWN = ("timestamp", "level", "event", "worker", "pid", "server", "logger", "exception", "tail")


def _console(record: Mapping[str, Any], colour: bool) -> bytes:
    level = str(record.get("level", "info"))
    stamp = time.strftime("%H:%M:%S", time.localtime(record["timestamp"]))
    millis = int((record["timestamp"] % 1) * 1000)
    label = f"{level.upper():<7}"
    if colour:
        label = f"{_COLOURS.get(level, '')}{label}{_RESET}"
    who = record.get("worker") or record.get("logger") or record.get("server") or ""
    if record.get("pid") is not None and record.get("worker"):
        who = f"{who}[{record['pid']}]"
    rest = " ".join(f"{k}={_logfmt_value(v)}" for k, v in record.items() if k not in _CONSOLE_OWN and v is not None)
    lines = [f"{stamp}.{millis:03d} {label} {who}: {record.get('event', '')}" + (f"  {rest}" if rest else "")]
    exception = record.get("exception")
    if isinstance(exception, Mapping):
        lines.append(_exception_text(exception).rstrip("\n"))
    tail = record.get("tail")
    if tail:
        lines.append(f"  its last {len(tail)} line{'s' if len(tail) != 1 else ''} of output:")
        lines.extend(f"  | {line}" for line in tail)
    return ("\n".join(lines) + "\n").encode()


def _exception_text(exception: Mapping[str, Any]) -> str:
    """A structured exception as Python prints it."""
    if "traceback" in exception:
        return str(exception["traceback"])
    lines = ["Traceback (most recent call last):"]
    for frame in exception.get("frames", ()):
        lines.append(f'  File "{frame.get("file")}", line {frame.get("line")}, in {frame.get("function")}')
        if frame.get("code"):
            lines.append(f"    {frame['code']}")
    message = exception.get("message")
    lines.append(f"{exception.get('type')}: {message}" if message else str(exception.get("type")))
    return "\n".join(lines)


def renderer(name: str, destination: int) -> Render:
    """The function that renders records in format `name` for `destination` (colour: a terminal, no NO_COLOR)."""
    if name == "json":
        return _json
    if name == "logfmt":
        return _logfmt
    colour = os.isatty(destination) and not os.environ.get("NO_COLOR")
    return lambda record: _console(record, colour)
