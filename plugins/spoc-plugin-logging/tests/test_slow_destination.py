"""A destination that does not keep up (a full pipe nobody reads) never holds the server up; what is dropped is
counted and said once it takes lines again. One that keeps up needs no helper thread."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runs import APP

SHUTDOWN_TIMEOUT = 3
LINES = 2 * 20_000


class Burst:
    """`spoc run` of the ``burst`` app, its stdout a pipe read only when the test says; the workers say when they
    are done through a FIFO."""

    def __init__(self, tmp_path: Path) -> None:
        fifo = tmp_path / "done"
        os.mkfifo(fifo)
        self._fifo = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self._keep_open = os.open(fifo, os.O_WRONLY)  # no EOF before the workers open it
        self.stderr = tmp_path / "stderr"
        command = [sys.executable, "-m", "spoc", "run", f"{APP}:server", "--log-format", "json"]
        with self.stderr.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [*command, "--shutdown-timeout", str(SHUTDOWN_TIMEOUT)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "SPOC_TEST_APP": "burst", "SPOC_TEST_SIDE": str(fifo)},
                cwd=APP.parent,
            )
        self.data = bytearray()
        self._reader: threading.Thread | None = None

    def read_until(self, text: bytes, count: int = 1, timeout: float = 60.0) -> None:
        """Read stdout here until `text` has come `count` times."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while self.data.count(text) < count:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no {text!r} within {timeout}s: {self.stderr.read_text()}"
            chunk = os.read(fd, 65536)
            assert chunk, f"stdout ended before {text!r}: {self.stderr.read_text()}"
            self.data += chunk

    def wait_done(self, timeout: float = 60.0) -> None:
        """Until both workers have written all their lines."""
        said = b""
        deadline = time.monotonic() + timeout
        while said.count(b"done") < 2:
            ready, _, _ = select.select([self._fifo], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"the workers did not finish within {timeout}s: {self.stderr.read_text()}"
            said += os.read(self._fifo, 1024)

    def read_on(self) -> None:
        """From now on, read stdout to its end on a thread of the test."""
        assert self.proc.stdout is not None
        stdout = self.proc.stdout

        def read() -> None:
            while chunk := stdout.read1(65536):
                self.data += chunk

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def records(self) -> list[dict[str, Any]]:
        if self._reader is not None:
            self._reader.join(30)
        return [json.loads(line) for line in self.data.decode().splitlines()]  # each line whole, or this fails

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        os.close(self._fifo)
        os.close(self._keep_open)


@pytest.fixture
def burst(tmp_path: Path) -> Iterator[Burst]:
    program = Burst(tmp_path)
    yield program
    program.close()


def test_a_stuck_destination_does_not_delay_the_shutdown(burst: Burst) -> None:
    # Nobody reads stdout from the start: the server's monitor, which may handle the workers' first events
    # before start() has run the plugins' server_started, must not wait for it (it holds their lock).
    burst.wait_done()  # 40,000 lines went out while nobody read stdout: the pipe and the buffer are full
    os.kill(burst.proc.pid, signal.SIGTERM)
    # Generous ceiling: the shutdown deadline and the plugin's last flush, with room for a loaded machine.
    # Without the writer thread, the monitor would wait in a write and never see the signal.
    assert burst.proc.wait(SHUTDOWN_TIMEOUT + 20) == 0, burst.stderr.read_text()
    burst.read_on()
    lines = [r for r in burst.records() if r.get("stream") == "stdout"]
    assert len(lines) < LINES  # lines were dropped, never torn: every line parsed


def test_what_is_dropped_is_counted_and_said_when_the_destination_takes_lines_again(burst: Burst) -> None:
    burst.read_until(b'"lifecycle":"started"', count=2)
    burst.wait_done()
    burst.read_on()
    os.kill(burst.proc.pid, signal.SIGTERM)
    assert burst.proc.wait(SHUTDOWN_TIMEOUT + 20) == 0, burst.stderr.read_text()
    stream = burst.records()
    reports = [r for r in stream if "dropped" in r]
    assert reports and all(r["event"].endswith("dropped: the destination did not keep up") for r in reports)
    assert reports[0]["level"] == "warning" and reports[0]["logger"] == "spoc.logging"
    received = sum(1 for r in stream if r.get("stream") == "stdout")
    at_stop = re.findall(r"(\d+) lines? dropped at the stop", burst.stderr.read_text())  # if it was not taken
    said = sum(r["dropped"] for r in reports) + sum(map(int, at_stop))
    # Every missing line is counted; the count also holds the few other records dropped with them (a worker's
    # "exited", spoc's own lines about the stop), which this test cannot tell from the workers' lines.
    assert LINES - received <= said <= LINES - received + 10


KEEPS_UP = r"""
import os, threading
from spoc import Server, ThreadWorker
from spoc_logging import Logging

class Prints(ThreadWorker):
    def main(self):
        for i in range(1000):
            print("line", i)
        self.done.set()
        self.wait()

worker = Prints("printer")
worker.done = threading.Event()
server = Server("keeps-up", plugins=[Logging(format="json", destination=os.open(os.devnull, os.O_WRONLY))])
server.add_worker(worker)
server.start()
assert worker.done.wait(30)
writers = [t.name for t in threading.enumerate() if t.name.startswith("spoc-logging-writer")]
server.stop()
assert server.join_all(30) == []
print("writer threads:", writers)
"""


def test_a_destination_that_keeps_up_never_has_a_helper_thread() -> None:
    environment = {**os.environ, "SPOC_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run([sys.executable, "-c", KEEPS_UP], capture_output=True, text=True, timeout=60, env=environment)
    assert done.returncode == 0, done.stderr
    assert "writer threads: []" in done.stdout
