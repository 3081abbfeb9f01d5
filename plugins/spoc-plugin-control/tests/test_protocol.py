"""The control socket takes any bytes without harm, and answers only its own uid and root (SO_PEERCRED)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import PYTHON_FOR_OTHERS, ctl, status
from spoc.testing import App

pytestmark = pytest.mark.timeout(120)


def lasting(workers: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """What a request that changed nothing leaves as it was: each worker's state, pid, start and restarts."""
    return {name: (w["state"], w["pid"], w["since"], w["restarts"]) for name, w in workers.items()}


def socket_of(app: App, runtime: Path) -> Path:
    return runtime / "spoc" / f"shop.{app.pid}.sock"


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(path))
    return sock


def read_line(sock: socket.socket) -> dict[str, Any] | None:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    reply: dict[str, Any] = json.loads(data)
    return reply


def ask(path: Path, raw: bytes) -> dict[str, Any] | None:
    with connect(path) as sock:
        sock.sendall(raw)
        return read_line(sock)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"hello\n", "bad request: not a JSON object"),
        (b"\xff\xfe\x00garbage\n", "bad request: not a JSON object"),
        (b"[1, 2]\n", "bad request: not a JSON object but a list"),
        (b'{"verb": "status"}\n', 'a request is a JSON object with a "command" string'),
        (b'{"command": "explode"}\n', "unknown command 'explode'; the commands are: info, status, restart"),
        (b'{"command": "restart", "workers": "mailer"}\n', '"workers" is a list of worker names'),
        (b'{"command": "restart", "workers": []}\n', "name at least one worker"),
        (b'{"command": "stop", "workers": ["mailer"], "wait": "yes"}\n', '"wait" is true or false'),
        (b'{"command": "stop", "workers": ["mailer"], "timeout": -1}\n', '"timeout" is a number of seconds > 0'),
        (b'{"command": "scale", "worker": "poller", "count": "3"}\n', 'scale takes "worker"'),
        (b'{"command": "scale", "worker": "poller", "count": true}\n', 'scale takes "worker"'),
    ],
)
def test_a_bad_request_gets_an_error_and_nothing_changes(
    shop: Callable[..., App], runtime: Path, raw: bytes, error: str
) -> None:
    app = shop()
    before = lasting(status())
    reply = ask(socket_of(app, runtime), raw)
    assert reply is not None and reply["ok"] is False and error in reply["error"], reply
    assert lasting(status()) == before


def test_a_ten_megabyte_line_is_refused_and_its_connection_closed(shop: Callable[..., App], runtime: Path) -> None:
    app = shop()
    with connect(socket_of(app, runtime)) as sock:
        sock.sendall(b"x" * (10 * 2**20) + b"\n")
        reply = read_line(sock)
        assert reply is not None and reply == {"ok": False, "error": "bad request: a line longer than 65536 bytes"}
        assert sock.recv(1) == b"", "and the connection is closed"
    assert status()["mailer"]["state"] == "running"


def test_silent_and_deaf_clients_do_not_block_others(shop: Callable[..., App], runtime: Path) -> None:
    app = shop()
    path = socket_of(app, runtime)
    silent = connect(path)  # connects and never writes
    deaf = connect(path)  # writes and never reads its replies
    deaf.setblocking(False)
    sent = 0
    try:
        while sent < 50 * 2**20:
            sent += deaf.send(b'{"command": "stacks"}\n' * 100)
    except BlockingIOError:
        pass  # its replies filled both buffers: the server's thread for it is stuck in a write
    try:
        for _ in range(3):
            assert status()["mailer"]["state"] == "running"
        ctl("restart", "poller-1")
        with connect(path) as sock:  # several requests on one connection, in order
            sock.sendall(b'{"command": "info"}\n{"command": "status", "workers": ["mailer"]}\n')
            with sock.makefile("rb") as replies:
                first, second = json.loads(replies.readline()), json.loads(replies.readline())
        assert first is not None and first["server"] == "shop" and first["pid"] == app.pid
        assert second is not None and [w["name"] for w in second["workers"]] == ["mailer"]
    finally:
        silent.close()
        deaf.close()
    assert app.proc.poll() is None


def test_many_connections_at_once_are_answered_or_told_busy(shop: Callable[..., App], runtime: Path) -> None:
    app = shop()
    path = socket_of(app, runtime)
    held = [connect(path) for _ in range(20)]
    try:
        busy = read_line(held[-1])  # told at once, and closed
        assert busy is not None and busy["ok"] is False and busy["error"].startswith("busy: 16 connections are open")
        held[0].sendall(b'{"command": "info"}\n')  # one that was let in is answered
        info = read_line(held[0])
        assert info is not None and info["ok"] is True and info["pid"] == app.pid
    finally:
        for sock in held:
            sock.close()
    assert status()["mailer"]["state"] == "running"  # freed


CLIENT = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(30)
try:
    sock.connect(sys.argv[1])
except OSError as exc:
    print(json.dumps({"connect": exc.strerror}))
    raise SystemExit(0)
sock.sendall(b'{"command": "status"}\\n')
data = b""
while not data.endswith(b"\\n"):
    chunk = sock.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.decode() or json.dumps({"closed": True}))
"""


def as_nobody(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        ["runuser", "-u", "nobody", "--", PYTHON_FOR_OTHERS, "-c", CLIENT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    reply: dict[str, Any] = json.loads(done.stdout)
    return reply


@pytest.mark.skipif(os.getuid() != 0, reason="runs a client as uid nobody: needs root")
def test_another_uid_is_refused_by_the_files_and_by_its_credentials(shop: Callable[..., App], runtime: Path) -> None:
    app = shop()
    path = socket_of(app, runtime)
    os.chmod(runtime, 0o755)
    assert as_nobody(path) == {"connect": "Permission denied"}  # the folder's mode 0700 keeps it out
    os.chmod(runtime / "spoc", 0o777)  # as if the modes were opened up by mistake: the credentials still refuse
    os.chmod(path, 0o777)
    reply = as_nobody(path)
    assert reply["ok"] is False and reply["error"].startswith("refused: uid 65534 may not control server 'shop'")
    app.expect(r"control: refused a connection from uid 65534", stream="stderr")
    assert status()["mailer"]["state"] == "running"


@pytest.mark.skipif(os.getuid() != 0, reason="makes a folder of another uid: needs root")
def test_a_folder_of_another_uid_is_not_used(spoc_app: Callable[..., App], runtime: Path) -> None:
    folder = runtime / "spoc"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)  # someone else's: a socket there could be theirs to read
    app = spoc_app(command=["spoc", "run", "shop:server"], cwd=Path(__file__).parent / "apps")
    app.expect(
        rf"control: server 'shop' runs without a control socket: the control socket folder {folder} belongs to "
        r"uid 65534, not to this process's uid 0",
        stream="stderr",
    )
    assert list(folder.iterdir()) == []


def test_closing_leaves_no_thread_even_for_a_refused_client_that_stays(tmp_path: Path) -> None:
    """A server started next in the same process must find none of the last one's threads: else it cannot fork
    its fork server. A refused client that neither reads nor closes is the one that would keep its thread."""
    from spoc_control._listener import MAX_CONNECTIONS, Listener

    listener = Listener(tmp_path / "ctl.sock", "lone", lambda request: {"ok": True})
    listener.serve()
    held = [connect(listener.path) for _ in range(MAX_CONNECTIONS + 1)]
    try:
        busy = read_line(held[-1])  # told, and left open by its client, which reads no more
        assert busy is not None and busy["error"].startswith("busy:")
        listener.close()
        left = [thread.name for thread in threading.enumerate() if thread.name.startswith("spoc-control:lone")]
        assert left == []
    finally:
        for sock in held:
            sock.close()
        listener.close()
