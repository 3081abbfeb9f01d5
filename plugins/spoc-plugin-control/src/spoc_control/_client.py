"""The client side of the control socket: find a server's socket, send one request, read its reply."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from ._paths import SOCKET_ENV, SocketFile, process_alive, socket_files, socket_folder
from ._protocol import LineError, LineReader, encode

__all__ = ["ClientError", "ask", "choose", "running_servers"]

_REPLY_LIMIT = 256 * 1024 * 1024  # a reply may hold every stack of a large server


class ClientError(Exception):
    """What went wrong on the client side, in one line for the operator."""


def running_servers(folder: Path | None = None) -> list[SocketFile]:
    """The control sockets of running servers in `folder` (default: `socket_folder()`); stale ones are removed."""
    live = []
    for found in socket_files(socket_folder() if folder is None else folder):
        if process_alive(found.pid):
            live.append(found)
        else:
            found.path.unlink(missing_ok=True)
    return live


def choose(server: str | None) -> Path:
    """The socket of the server `server` names (its name, its pid, or a socket's path), or of the one server
    that runs when `server` is None.

    Raises:
        ClientError: no server, or no such server, or several and none chosen (the message lists them).
    """
    if server is not None and "/" in server:
        return Path(server)
    if server is None and os.environ.get(SOCKET_ENV):
        return Path(os.environ[SOCKET_ENV])
    folder = socket_folder()
    live = running_servers(folder)
    if not live:
        raise ClientError(
            f"no spoc server of uid {os.getuid()} is running (no control socket in {folder}); is "
            f"spoc-plugin-control installed where it runs, and SPOC_CONTROL not 0?"
        )
    if server is None:
        if len(live) == 1:
            return live[0].path
        raise ClientError(f"{len(live)} servers are running ({_listing(live)}); choose one with -s NAME or PID")
    chosen = [found for found in live if server in (found.name, str(found.pid))]
    if not chosen:
        raise ClientError(f"no running server is named {server!r} or has that pid (running: {_listing(live)})")
    if len(chosen) > 1:
        raise ClientError(f"{len(chosen)} servers are named {server!r} ({_listing(chosen)}); choose one by pid")
    return chosen[0].path


def _listing(found: list[SocketFile]) -> str:
    return ", ".join(f"{f.name} (pid {f.pid})" for f in found)


def ask(path: Path, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send `request` to the server listening at `path` and return its reply.

    Raises:
        ClientError: the server cannot be reached, or went away, or did not answer within `timeout` seconds.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(encode(request))
            reply = LineReader(sock, _REPLY_LIMIT).read()
        except TimeoutError:
            raise ClientError(f"the server at {path} did not answer within {timeout:g}s") from None
        except (OSError, LineError) as exc:
            raise ClientError(f"cannot reach the server at {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if reply is None:
        raise ClientError(f"the server at {path} closed the connection without an answer (it may be stopping)")
    return reply
