"""The control protocol's framing: one JSON object per line each way, UTF-8, ``\\n``-terminated.

The requests and replies themselves are documented in docs/control.md; this
module only reads and writes lines, with a limit on a line's length.
"""

from __future__ import annotations

import json
import socket
from typing import Any

__all__ = ["MAX_LINE", "LineError", "LineReader", "encode"]

MAX_LINE = 64 * 1024
"""The longest request line a server reads, in bytes: a longer one is refused and its connection closed."""


class LineError(Exception):
    """A line that is too long, not UTF-8 JSON, or not an object (the message says which)."""


def encode(message: dict[str, Any]) -> bytes:
    """`message` as one line."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class LineReader:
    """Reads one JSON object per line from a connected socket, at most `limit` bytes a line."""

    def __init__(self, sock: socket.socket, limit: int = MAX_LINE) -> None:
        self._sock = sock
        self._limit = limit
        self._buffer = b""

    def read(self) -> dict[str, Any] | None:
        """The next object, or None at the end of the stream (a partial last line is dropped).

        Raises:
            LineError: the line is too long (the rest of the stream is not read), or not a JSON object.
            OSError: the socket failed, or timed out (`socket.timeout`).
        """
        while b"\n" not in self._buffer:
            if len(self._buffer) > self._limit:
                raise LineError(f"a line longer than {self._limit} bytes")
            chunk = self._sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        if len(line) > self._limit:
            raise LineError(f"a line longer than {self._limit} bytes")
        try:
            message = json.loads(line)
        except (UnicodeDecodeError, ValueError) as exc:
            raise LineError(f"not a JSON object: {exc}") from None
        if not isinstance(message, dict):
            raise LineError(f"not a JSON object but a {type(message).__name__}")
        return message
