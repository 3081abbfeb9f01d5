"""A stream whose destination goes away for good (its reader died, a full disk): the service goes on, the failure
is said at once on stderr, and how many lines were dropped is said at the stop."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runs import APP

WAIT = 60


def read_until(fd: int, texts: tuple[str, ...], seen: bytearray) -> None:
    """Read `fd` into `seen` until it holds every one of `texts` (a deadline, never a sleep)."""
    deadline = time.monotonic() + WAIT
    while not all(text.encode() in seen for text in texts):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"{texts} not read within {WAIT}s: {bytes(seen[-2000:])!r}"
        data = os.read(fd, 65536)
        assert data, f"end of output before {texts}: {bytes(seen[-2000:])!r}"
        seen += data


@pytest.mark.parametrize("destination", ["reader-gone", "full-disk"])
def test_a_destination_gone_for_good_is_said_at_once_and_what_it_lost_at_the_stop(
    destination: str, spoc_start_method: str, tmp_path: Path
) -> None:
    fifo = tmp_path / "running"
    os.mkfifo(fifo)
    running = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    keep = os.open(fifo, os.O_WRONLY)  # no end of file before the workers open it
    env = {"SPOC_TEST_APP": "chatty", "SPOC_TEST_START_METHOD": spoc_start_method, "SPOC_TEST_SIDE": str(fifo)}
    env = {**os.environ, **env}
    command = [sys.executable, "-m", "spoc", "run", f"{APP}:server", "--log-format", "json"]
    if destination == "full-disk":
        read_end, write_end = -1, os.open("/dev/full", os.O_WRONLY)
    else:
        read_end, write_end = os.pipe()
    program = subprocess.Popen(command, stdout=write_end, stderr=subprocess.PIPE, env=env, start_new_session=True)
    os.close(write_end)
    assert program.stderr is not None
    stderr = bytearray()
    try:
        read_until(running, ("thread running", "process running"), bytearray())  # both workers write lines
        if read_end >= 0:  # the log shipper reads the first lines of both workers, then dies
            read_until(read_end, ('"event":"thread line 3"', '"event":"process line 3"'), bytearray())
            os.close(read_end)
            read_end = -1
        read_until(program.stderr.fileno(), ("the log stream's destination failed",), stderr)  # said at once
        os.killpg(program.pid, signal.SIGTERM)  # the service went on: it stops cleanly
        _, rest = program.communicate(timeout=WAIT)
        stderr += rest
    finally:
        os.close(running)
        os.close(keep)
        if read_end >= 0:
            os.close(read_end)
        if program.poll() is None:
            os.killpg(program.pid, signal.SIGKILL)
            program.wait(10)
    text = stderr.decode()
    assert program.returncode == 0, text[-3000:]
    error = "BrokenPipeError" if destination == "reader-gone" else "OSError: [Errno 28] No space left on device"
    (said,) = [line for line in text.splitlines() if "the log stream's destination failed" in line]  # once
    assert error in said and "dropped from now on" in said
    dropped = re.search(
        r"server 'logging-app': (\d+) lines? of the log stream dropped since its destination "
        r"\(fd 1\) failed",
        text,
    )
    assert dropped is not None, text[-3000:]
    assert int(dropped.group(1)) >= 2  # at least both workers' "exited" records, and every line after the failure
    assert "2 workers ended cleanly" in text


def test_a_writer_whose_fd_number_is_reused_by_another_file_writes_to_it_again() -> None:
    """A writer is kept per fd number: once that number is another file (its failed pipe closed, a new pipe got
    the number), the next server that uses it writes there."""
    from spoc_logging._writer import writer_for

    read_end, write_end = os.pipe()
    os.close(read_end)
    writer = writer_for(write_end)
    writer.write(b"to nobody\n")  # EPIPE: gone for good
    assert isinstance(writer.gone, BrokenPipeError)
    writer.write(b"dropped\n")
    assert writer.take_lost() == 2
    read_end, new_write_end = os.pipe()
    os.dup2(new_write_end, write_end)  # the number is now the new pipe's
    os.close(new_write_end)
    try:
        assert writer_for(write_end) is writer and writer.gone is None
        writer.write(b"to the new pipe\n")
        assert os.read(read_end, 100) == b"to the new pipe\n"
    finally:
        os.close(read_end)
        os.close(write_end)
