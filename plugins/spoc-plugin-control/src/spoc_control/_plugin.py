"""The plugin: every server opens its control socket as it starts and removes it once it has stopped."""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

from spoc import Server, StashKey, hookimpl, log_extra

from ._listener import Listener
from ._paths import CONTROL_ENV, SOCKET_ENV, FolderError, prepare_folder, remove_stale, socket_folder, socket_name
from ._requests import Requests

__all__ = ["Control", "plugin"]

logger = logging.getLogger("spoc")

_LISTENER: StashKey[Listener] = StashKey()
_OFF = ("0", "false", "no", "off")
_taken: set[Path] = set()  # the sockets of this process's servers: two servers of one name get two
_taken_lock = threading.Lock()


class ControlError(Exception):
    """The control socket cannot be opened (the message says why and what to do)."""


class Control:
    """Open a control socket for every server, answered for this uid and root (``spoc ctl``; docs/control.md).

    Args:
        path: the socket's path (one server per process), instead of
            ``<server>.<pid>.sock`` in `spoc_control.socket_folder()`;
            ``SPOC_CONTROL_SOCKET`` gives it too (the argument first).
        enabled: False opens none; None (the default) opens one unless
            ``SPOC_CONTROL=0``.
    """

    name = "control"

    def __init__(self, path: str | os.PathLike[str] | None = None, enabled: bool | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.enabled = enabled

    def __repr__(self) -> str:
        return f"Control(path={self.path!r}, enabled={self.enabled!r})"

    def _on(self) -> bool:
        if self.enabled is not None:
            return self.enabled
        return os.environ.get(CONTROL_ENV, "1").strip().lower() not in _OFF

    @hookimpl
    def server_starting(self, server: Server) -> None:
        if not self._on():
            return
        try:
            path = self._claim(server)
            try:
                listener = Listener(path, server.name, Requests(server, str(path)).handle)
            except OSError as exc:
                _release(path)
                raise ControlError(f"cannot listen on {path}: {exc.strerror or exc}") from None
        except (ControlError, FolderError) as exc:
            if self._chosen() is not None:  # a path that was asked for is a promise: fail loudly
                server.stop(failure=f"control: {exc}")
            else:  # installed and not configured, it never makes a program fail
                logger.warning(
                    "control: server %r runs without a control socket: %s",
                    server.name,
                    exc,
                    extra=log_extra(server=server.name),
                )
            return
        server.stash[_LISTENER] = listener
        logger.info("control: server %r answers spoc ctl on %s", server.name, path, extra=log_extra(server=server.name))

    @hookimpl
    def server_started(self, server: Server) -> None:
        listener = server.stash.get(_LISTENER, None)
        if listener is not None:
            listener.serve()

    @hookimpl
    def server_stopped(self, server: Server) -> None:
        self._close(server)

    def _close(self, server: Server) -> None:
        listener = server.stash.get(_LISTENER, None)
        if listener is not None:
            del server.stash[_LISTENER]
            listener.close()
            _release(listener.path)

    def _chosen(self) -> Path | None:
        """The socket path asked for (`path`, else ``SPOC_CONTROL_SOCKET``), or None: one in the folder."""
        return self.path or (Path(os.environ[SOCKET_ENV]) if os.environ.get(SOCKET_ENV) else None)

    def _claim(self, server: Server) -> Path:
        """The path `server`'s socket binds to, reserved in this process; a stale socket there is removed."""
        given = self._chosen()
        with _taken_lock:
            if given is not None:
                if given in _taken:
                    raise ControlError(
                        f"socket {given} is taken by another server of this process; give each server its own "
                        f"with Control(path=...)"
                    )
                _clear(given)
                path = given
            else:
                folder = socket_folder()
                prepare_folder(folder)
                remove_stale(folder)
                pid = os.getpid()
                path = folder / socket_name(server.name, pid)
                copy = 1
                while path in _taken:
                    copy += 1
                    path = folder / socket_name(server.name, pid, f"-{copy}")
                _clear(path)
            _taken.add(path)
        return path


def _clear(path: Path) -> None:
    """Make room for a socket at `path`: remove one nobody listens on; refuse to touch one in use, or a file."""
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_socket():
        raise ControlError(f"{path} exists and is not a socket; remove it, or choose another path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:  # nobody listens: a server that died left it
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise ControlError(f"{path} is in use by another running server; choose another path")


def _release(path: Path) -> None:
    with _taken_lock:
        _taken.discard(path)


plugin = Control()
"""The instance the entry point installs: every server gets a socket unless ``SPOC_CONTROL=0``."""
