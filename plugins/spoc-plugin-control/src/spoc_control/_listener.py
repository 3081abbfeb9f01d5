"""A server's control socket: accepts connections, checks who connects, and answers each on a thread of its own.

Only a peer with this process's uid, or root, is answered: checked with
``SO_PEERCRED`` on every connection (the socket's mode 0600 and its folder's
0700 are a second fence, not the only one). Each connection is served on a
thread of its own, at most `MAX_CONNECTIONS` at once; one that sends nothing
for `IDLE_TIMEOUT` seconds, or does not read its replies for as long, is
closed. A line longer than `MAX_LINE`, or one that is not a JSON object, gets
an error reply; nothing a client sends reaches the server but a valid
request. Processes forked while the socket is open (the fork server, fork
workers) close their copies at once.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import struct
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spoc import log_extra, start_helper_thread

from ._protocol import LineError, LineReader, encode

__all__ = ["IDLE_TIMEOUT", "MAX_CONNECTIONS", "Listener"]

logger = logging.getLogger("spoc")

MAX_CONNECTIONS = 16
"""Connections served at once; one more is told so and closed."""
CLOSE_WAIT = 1.0
"""Seconds `Listener.close` waits for the threads of the open connections to end (each within its next poll)."""
IDLE_TIMEOUT = 10.0
"""Seconds a connection may stay silent between requests, or leave a reply unread, before it is closed."""

_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class Listener:
    """The control socket of one server, bound at `path` (mode 0600); `serve` starts answering, `close` ends."""

    def __init__(self, path: Path, server: str, handle: Handler) -> None:
        self.path = path
        self._server = server
        self._handle = handle
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._socket.bind(str(path))
            os.chmod(path, 0o600)  # the folder (0700) keeps others out until then
            self._socket.listen(64)
        except BaseException:
            self._socket.close()
            raise
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._connections: dict[socket.socket, threading.Thread | None] = {}  # each with the thread serving it
        self._refused: dict[socket.socket, threading.Thread | None] = {}  # each with the thread telling it why
        self._lock = threading.Lock()
        self._closed = False
        _open.add(self)

    def serve(self) -> None:
        """Start accepting connections, on a thread of its own."""
        self._thread = start_helper_thread(self._accept_loop, f"spoc-control:{self._server}")

    def close(self) -> None:
        """Stop accepting, close every connection, remove the socket file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join()
        with self._lock:  # read once the accept loop has ended: it admits or refuses no more
            connections = {**self._connections, **self._refused}
        for connection in connections:  # their threads end at their next read or write
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + CLOSE_WAIT
        for thread in connections.values():  # a server started next in this process must find no thread of ours
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._socket.close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        _open.discard(self)

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                try:
                    connection, _ = self._socket.accept()
                except OSError:
                    continue
                self._admit(connection)

    def _admit(self, connection: socket.socket) -> None:
        refusal = self._refusal(connection)
        with self._lock:
            if refusal is None and len(self._connections) >= MAX_CONNECTIONS:
                refusal = f"busy: {MAX_CONNECTIONS} connections are open; try again"
            if refusal is None and self._closed:
                refusal = f"server {self._server!r} is stopping"
            if refusal is None:
                self._connections[connection] = start_helper_thread(
                    lambda: self._serve_connection(connection), f"spoc-control:{self._server}:client"
                )
            if refusal is not None:  # on a thread: its drain must not hold up the next connection
                self._refused[connection] = start_helper_thread(
                    lambda: self._refuse(connection, refusal), f"spoc-control:{self._server}:refusal"
                )

    def _refuse(self, connection: socket.socket, refusal: str) -> None:
        try:
            _reply_and_close(connection, refusal)
        finally:
            with self._lock:
                self._refused.pop(connection, None)

    def _refusal(self, connection: socket.socket) -> str | None:
        """Why the peer may not control this server, or None when it may (its uid is ours, or root's)."""
        pid, uid, _ = _CREDENTIALS.unpack(
            connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
        )
        if uid in (os.getuid(), 0):
            return None
        logger.warning(
            "control: refused a connection from uid %d (pid %d) to server %r: only uid %d and root are answered",
            uid,
            pid,
            self._server,
            os.getuid(),
            extra=log_extra(server=self._server),
        )
        return f"refused: uid {uid} may not control server {self._server!r} (only uid {os.getuid()} and root)"

    def _serve_connection(self, connection: socket.socket) -> None:
        connection.settimeout(IDLE_TIMEOUT)
        reader = LineReader(connection)
        try:
            while True:
                try:
                    request = reader.read()
                except LineError as exc:
                    connection.sendall(encode({"ok": False, "error": f"bad request: {exc}"}))
                    _drain(connection)
                    return  # the rest of the stream cannot be framed
                if request is None:
                    return
                connection.sendall(encode(self._handle(request)))
        except OSError:  # the client went away, stayed silent, or did not read: nothing more to say to it
            return
        finally:
            with self._lock:
                self._connections.pop(connection, None)
            connection.close()

    def _close_copy(self) -> None:
        """In a forked child: close the inherited socket, pipe and connections without touching the server's."""
        for close in (
            self._socket.close,
            lambda: os.close(self._wake_r),
            lambda: os.close(self._wake_w),
            *(connection.close for connection in (*self._connections, *self._refused)),
        ):
            try:
                close()
            except OSError:
                pass


def _drain(connection: socket.socket, seconds: float = 5.0) -> None:
    """Say we are done, and read what the client still sends (for `seconds` at most) before closing:
    correctness, a socket closed with unread data resets the connection, and the reset can destroy the error
    reply before the client has read it."""
    connection.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        connection.settimeout(left)
        if not connection.recv(1 << 20):
            return


def _reply_and_close(connection: socket.socket, refusal: str) -> None:
    try:
        connection.settimeout(1.0)
        connection.sendall(encode({"ok": False, "error": refusal}))
        _drain(connection, 1.0)
    except OSError:
        pass
    finally:
        connection.close()


_open: weakref.WeakSet[Listener] = weakref.WeakSet()


def _close_after_fork() -> None:
    for listener in list(_open):
        listener._close_copy()
    _open.clear()


os.register_at_fork(after_in_child=_close_after_fork)
