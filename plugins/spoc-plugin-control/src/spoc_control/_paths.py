"""Where control sockets live: one folder per uid, one socket per server, named after the server and its pid.

The folder is ``$XDG_RUNTIME_DIR/spoc/``, else ``/tmp/spoc-<uid>/``, mode
0700 and owned by the uid; each socket is ``<server>.<pid>.sock`` (the
server's name with anything but letters, digits, ``_``, ``-`` and ``.``
replaced by ``_``), mode 0600. A socket whose process is gone is stale: the
next server of the uid, and ``spoc ctl ls``, remove it.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CONTROL_ENV",
    "SOCKET_ENV",
    "FolderError",
    "SocketFile",
    "prepare_folder",
    "process_alive",
    "remove_stale",
    "socket_files",
    "socket_folder",
    "socket_name",
]

CONTROL_ENV = "SPOC_CONTROL"
"""``0`` (or ``false``, ``no``, ``off``) turns the control socket off for every server of the process."""
SOCKET_ENV = "SPOC_CONTROL_SOCKET"
"""The path of the control socket, instead of one in `socket_folder` (one server per process)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_NAME = re.compile(r"^(?P<name>.+)\.(?P<pid>[0-9]+)\.sock$")
_NAME_LIMIT = 64  # a Unix socket's path has at most 107 bytes


class FolderError(Exception):
    """The socket folder cannot be used safely (the message says why and what to do)."""


@dataclass(frozen=True)
class SocketFile:
    """A control socket in the folder: its path, and the server name and pid its file name holds."""

    path: Path
    name: str
    pid: int


def socket_folder() -> Path:
    """The folder of this uid's control sockets (not created here)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime, "spoc") if runtime else Path(f"/tmp/spoc-{os.getuid()}")


def prepare_folder(folder: Path) -> None:
    """Create `folder` with mode 0700, or check that it is a folder of this uid's that no one else can enter.

    Raises:
        FolderError: it is not a folder, belongs to another uid, or cannot be made.
    """
    try:
        if not os.path.lexists(folder):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except OSError as exc:
        raise FolderError(f"cannot make the control socket folder {folder}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise FolderError(f"{folder} is not a folder: remove it, or choose a socket with {SOCKET_ENV}")
    if info.st_uid != os.getuid():
        raise FolderError(
            f"the control socket folder {folder} belongs to uid {info.st_uid}, not to this process's uid "
            f"{os.getuid()}; remove it, or choose a socket with {SOCKET_ENV}"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(folder, 0o700)


def socket_name(server: str, pid: int, suffix: str = "") -> str:
    """The file name of the socket of server `server` in process `pid`."""
    return f"{_UNSAFE.sub('_', server)[:_NAME_LIMIT]}{suffix}.{pid}.sock"


def socket_files(folder: Path) -> list[SocketFile]:
    """The control sockets in `folder`, by file name (none when it does not exist)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return []
    found = []
    for entry in entries:
        match = _NAME.match(entry.name)
        if match is not None:
            found.append(SocketFile(Path(entry.path), match["name"], int(match["pid"])))
    return found


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (one of another uid's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: Path) -> list[Path]:
    """Remove the sockets in `folder` whose process is gone; the paths removed."""
    removed = []
    for found in socket_files(folder):
        if not process_alive(found.pid):
            try:
                found.path.unlink()
            except FileNotFoundError:
                pass
            removed.append(found.path)
    return removed
