"""spoc-plugin-control's figures: ``spoc ctl status`` from a shell, and what answering it costs a stop.

- ctl status: from the start of ``spoc ctl -s SOCKET status`` to the end of its output, against a server in this
  process with 100 thread and 4 process workers (the table of 104 workers, each process's /proc read); target
  under 100 ms, a Python start included. The floor is that Python start alone (``python -c pass``), printed
  beside it for information.
- stop under status requests: the stop latency of the same server while another process asks it for its status
  50 times a second over the socket, against the same server while that process asks a socket of its own
  instead (answered there with as many bytes), taken in turns; each stop is begun once the asking process has
  had 10 answers. Both servers thus wait as long before their stop, beside the same asking process: only
  whether this server answers differs. (A server stopped at once, against one stopped after the requests'
  quarter of a second, measured the idle in between, which on this machine slows a stop by more than the
  requests do.) Nine times the rounds of the other figures (81, half a minute): a stop of 15-20 ms is moved by
  a millisecond or two of the machine's noise.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from spoc import ProcessWorker, Server, ThreadWorker

THREADS, PROCESSES = 100, 4
CALLS = 20
RATE = 50.0

REQUESTER = """
import socket, sys, threading, time
path, every = sys.argv[1], 1 / float(sys.argv[2])
if len(sys.argv) > 3:  # ask a socket of our own, answered with as many bytes as the server's status
    canned = b'{"ok": true, "pad": "' + b"x" * int(sys.argv[3]) + b'"}\\n'
    own = socket.socket(socket.AF_UNIX)
    own.bind(path)
    own.listen(8)
    def answer(conn):
        with conn:
            asked = b""
            while not asked.endswith(b"\\n"):
                chunk = conn.recv(1 << 16)
                if not chunk:
                    return
                asked += chunk
            conn.sendall(canned)
            conn.recv(1)
    def accept():
        while True:
            threading.Thread(target=answer, args=(own.accept()[0],), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
next_at = time.monotonic()
while True:
    next_at = max(next_at + every, time.monotonic())  # a slot missed is skipped, not made up in a burst
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            sock.sendall(b'{"command": "status"}\\n')
            reply = b""
            while not reply.endswith(b"\\n"):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                reply += chunk
            else:
                print("answered", flush=True)
    except OSError:
        pass  # not listening yet, or any more
    time.sleep(max(0.0, next_at - time.monotonic()))
"""


def missing() -> str | None:
    """Why the figures cannot be measured here, or None."""
    try:
        import spoc_control  # noqa: F401
    except ImportError:
        return "spoc-plugin-control is not installed (nox -s bench installs it)"
    return None


class Idle(ThreadWorker):
    def main(self) -> None:
        self.wait()


class IdleChild(ProcessWorker):
    def main(self) -> None:
        self.wait()


def _spoc_command() -> str:
    return str(Path(sys.executable).with_name("spoc"))


def ctl_status_times(path: Path) -> tuple[list[float], list[float], int]:
    """Seconds of `CALLS` runs of ``spoc ctl status`` against a running server of 104 workers, and as many
    Python starts, taken in turns; and the bytes of that server's status reply."""
    from spoc_control import Control

    server = Server("bench-ctl", plugins=[Control(path=path)])
    for i in range(THREADS):
        server.add_worker(Idle(f"t{i}"))
    for i in range(PROCESSES):
        server.add_worker(IdleChild(f"p{i}"))
    server.start()
    try:
        while any(status.state != "running" for status in server.status()):
            time.sleep(0.01)
        ctl, python = [], []
        for _ in range(CALLS):
            began = time.perf_counter()
            out = subprocess.run([_spoc_command(), "ctl", "-s", str(path), "status"], capture_output=True, check=True)
            ctl.append(time.perf_counter() - began)
            assert out.stdout.count(b"\n") == THREADS + PROCESSES + 1, out.stdout[-300:]
            began = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            python.append(time.perf_counter() - began)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            sock.sendall(b'{"command": "status"}\n')
            size = len(sock.makefile("rb").readline())
    finally:
        server.stop()
        server.join_all(30)
    return ctl, python, size


def stop_latency_asked(path: Path, asked: bool, size: int) -> float:
    """Seconds from ``stop()`` until ``join_all()`` returns, for 100 threads and 4 processes with the control
    socket at `path`, once another process asking `RATE` times a second for the status has had 10 answers (the
    rate it keeps): from this server when `asked`, else from a socket of its own answering `size` bytes."""
    from spoc_control import Control

    server = Server("bench-stop", plugins=[Control(path=path)])
    for i in range(THREADS):
        server.add_worker(Idle(f"t{i}"))
    for i in range(PROCESSES):
        server.add_worker(IdleChild(f"p{i}"))
    requester = None
    try:
        server.start()
        while any(status.state != "running" for status in server.status()):
            time.sleep(0.01)
        own = path.with_name("own.sock")
        own.unlink(missing_ok=True)
        ask = [str(path), str(RATE)] if asked else [str(own), str(RATE), str(size)]
        requester = subprocess.Popen([sys.executable, "-c", REQUESTER, *ask], stdout=subprocess.PIPE)
        assert requester.stdout is not None
        for _ in range(10):
            assert requester.stdout.readline(), "the asking process ended"
        began = time.perf_counter()
        server.stop()
        late = server.join_all(30)
        elapsed = time.perf_counter() - began
    finally:
        server.stop()
        server.join_all(30)
        if requester is not None:
            requester.kill()
            requester.wait()
    assert not late, late
    return elapsed


def measure(
    rounds: int,
    row: Callable[..., None],
    paired_medians: Callable[..., list[float]],
) -> int:
    why = missing()
    if why is not None:
        print(f"{'ctl status, stop under status requests':<42} skipped: {why}")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-ctl-") as folder:
        path = Path(folder, "ctl.sock")
        ctl, python, size = ctl_status_times(path)
        ctl_ms, python_ms = 1e3 * statistics.median(ctl), 1e3 * statistics.median(python)
        ok_status = ctl_ms < 100
        row(
            f"ctl status ({THREADS + PROCESSES} workers) vs python start", ctl_ms, python_ms, "ms", "<100 ms", ok_status
        )
        asked, quiet = (
            1e3 * t
            for t in paired_medians(
                9 * rounds,
                lambda: stop_latency_asked(path, True, size),
                lambda: stop_latency_asked(path, False, size),
            )
        )
    ok_stop = asked <= 1.1 * quiet
    row(f"stop, {RATE:g} status requests/s vs elsewhere", asked, quiet, "ms", "<=1.1x", ok_stop)
    return int(not ok_status) + int(not ok_stop)
