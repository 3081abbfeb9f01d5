"""Capture at the fd level: nothing written before a SIGKILL is lost, long lines arrive whole, crashes tell why."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runs import APP, own_record, records, spoc_run
from spoc.testing import App


def test_every_line_written_before_a_sigkill_arrives(tmp_path: Path, spoc_start_method: str) -> None:
    """The stream goes to a file, which never makes the writer drop a line: what is missing was lost."""
    side, fifo, out = tmp_path / "written", tmp_path / "at-20000", tmp_path / "stream.jsonl"
    os.mkfifo(fifo)
    env = {**os.environ, "SPOC_TEST_APP": "flood_kill", "SPOC_TEST_SIDE": str(side), "SPOC_TEST_FIFO": str(fifo)}
    env["SPOC_TEST_START_METHOD"] = spoc_start_method
    command = [sys.executable, "-m", "spoc", "run", f"{APP}:server", "--log-format", "json"]
    with out.open("wb") as stdout:
        program = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        keep = os.open(fifo, os.O_WRONLY)  # no EOF before the worker opens it
        try:
            ready, _, _ = select.select([reader], [], [], 60)
            assert ready, "the worker did not write 20,000 lines within 60s"
            pid = int(os.read(reader, 64).split()[0])
        finally:
            os.close(reader)
            os.close(keep)
        os.kill(pid, signal.SIGKILL)  # while it floods
        noted = int(side.read_text())  # the worker wrote at least this many lines before it was killed
        _, stderr = program.communicate(timeout=60)
        assert program.returncode == 1, stderr.decode()[-3000:]
    finally:
        if program.poll() is None:
            os.killpg(program.pid, signal.SIGKILL)
            program.wait(10)
    stream = records(out.read_text())
    numbers = [int(r["event"]) for r in stream if r.get("worker") == "flood" and r.get("stream") == "stdout"]
    assert len(numbers) >= noted >= 20_000
    assert numbers == list(range(len(numbers)))  # none lost, none twice, in order
    (exited,) = [r for r in stream if r.get("lifecycle") == "exited"]
    assert (exited["outcome"], exited["signal"]) == ("killed", "SIGKILL")
    assert exited["tail"] == [str(n) for n in numbers[-50:]]  # the last lines come with the death


def test_a_64_kib_line_arrives_whole_while_another_child_writes_too(
    spoc_app: type[App], spoc_start_method: str
) -> None:
    env = {"SPOC_TEST_START_METHOD": spoc_start_method}
    program = spoc_run(spoc_app, "long_lines", "--log-format", "json", env=env)
    assert program.wait() == 0, program.stderr[-2000:]
    lines = [r for r in records(program.stdout) if r.get("stream") == "stdout"]
    assert sorted(r["worker"] for r in lines) == ["a-writer"] * 20 + ["b-writer"] * 20
    for record in lines:
        assert record["event"] == record["worker"][0] * 65536 and "partial" not in record


def test_a_line_longer_than_max_line_arrives_in_parts_each_at_most_max_line(
    spoc_app: type[App], spoc_start_method: str
) -> None:
    """Every part of a 10 MiB line, the last one too, is at most max_line (1 MiB) bytes and marked partial; parts
    are cut between characters; the parts make the line; a short line after it is whole."""
    program = spoc_run(
        spoc_app, "huge_lines", "--log-format", "json", env={"SPOC_TEST_START_METHOD": spoc_start_method}
    )
    assert program.wait(60) == 0, program.stderr[-2000:]
    stream = records(program.stdout)
    for worker in ("process", "thread"):
        lines = [r for r in stream if r.get("worker") == worker and r.get("stream") == "stdout"]
        assert lines[-1]["event"] == "after" and "partial" not in lines[-1]
        parts = lines[:-1]
        assert all(r.get("partial") is True for r in parts)
        assert all(len(r["event"].encode()) <= 1 << 20 for r in parts), [len(r["event"].encode()) for r in parts]
        assert "\ufffd" not in "".join(r["event"] for r in parts)
        text = "".join(r["event"] for r in parts)
        assert text == "a" * (10 << 20) + "€" * (1 << 20)
        a_parts = [r for r in parts if r["event"].startswith("a")]
        assert len(a_parts) == 10, [len(r["event"]) for r in a_parts]  # 10 MiB: ten parts of 1 MiB


def test_a_worker_that_points_its_stdout_at_its_own_file_finds_only_its_own_lines_there(
    spoc_app: type[App], spoc_start_method: str, tmp_path: Path
) -> None:
    """The plugin writes its event markers and record frames only into the pipes it installed, never into the
    file the worker dup2()'d onto fd 1; its records still reach the stream, with its events."""
    own = tmp_path / "user.log"
    env = {"SPOC_TEST_START_METHOD": spoc_start_method, "SPOC_TEST_SIDE": str(own)}
    program = spoc_run(spoc_app, "own_file", "--log-format", "json", env=env)
    assert program.wait() == 1, program.stderr[-2000:]
    assert own.read_bytes() == b"to my own file\nstill to my own file\n"
    stream = [r for r in records(program.stdout) if own_record(r, "own")]
    events = [r.get("lifecycle") or r["event"] for r in stream]
    assert events == ["a record after dup2", "started", "error", "exited"], events
    assert stream[2]["exception"]["message"] == "failed after dup2"


@pytest.mark.parametrize("crash", ["segfault", "abort"])
def test_a_crash_s_trace_is_attributed_to_the_worker_and_its_last_lines_come_with_its_end(
    spoc_app: type[App], crash: str, spoc_start_method: str
) -> None:
    program = spoc_run(spoc_app, crash, "--log-format", "json", env={"SPOC_TEST_START_METHOD": spoc_start_method})
    assert program.wait() == 1
    mine = [r for r in records(program.stdout) if own_record(r, "crasher")]
    errors = [r["event"] for r in mine if r.get("stream") == "stderr"]
    fatal = "Segmentation fault" if crash == "segfault" else "Aborted"
    assert f"Fatal Python error: {fatal}" in errors, errors
    assert any("in main" in line for line in errors)  # faulthandler's stack names the worker's frame
    exited = mine[-1]
    assert exited["lifecycle"] == "exited" and exited["outcome"] == "killed"
    assert exited["signal"] == ("SIGSEGV" if crash == "segfault" else "SIGABRT")
    assert exited["tail"][:3] == ["about to crash 0", "about to crash 1", "about to crash 2"]
    assert f"Fatal Python error: {fatal}" in exited["tail"]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_worker_that_fails_at_boot_says_why_with_its_error(
    spoc_app: type[App], fmt: str, spoc_start_method: str
) -> None:
    program = spoc_run(spoc_app, "setup_fails", "--log-format", fmt, env={"SPOC_TEST_START_METHOD": spoc_start_method})
    assert program.wait() == 1
    if fmt == "json":
        (error,) = [r for r in records(program.stdout) if r.get("lifecycle") == "error"]
        assert error["worker"] == "booter" and error["phase"] == "setup" and error["level"] == "error"
        assert error["exception"]["type"] == "ConnectionRefusedError"
        assert "db:5432 refused the connection" in error["exception"]["traceback"]
        assert sorted(error["tail"]) == ["connecting to the database at db:5432", "reading the configuration"]
    else:
        out = program.stdout
        at = out.index("booter[")
        shown = out[out.index("worker failed in setup(): db:5432 refused the connection", at) :]
        assert "ConnectionRefusedError: db:5432 refused the connection" in shown
        assert "  | reading the configuration" in shown and "  | connecting to the database at db:5432" in shown


@pytest.mark.parametrize("fmt", ["json", "logfmt"])
def test_lines_json_must_escape_and_bytes_that_are_not_utf8_arrive_as_written(spoc_app: type[App], fmt: str) -> None:
    program = spoc_run(spoc_app, "odd_lines", "--log-format", fmt)
    assert program.wait() == 0, program.stderr
    expected = ['quote " and backslash \\', "tab\there", "ünïcødé ✓", "\x07bell", "emoji 🎉", "", "  spaced  "]
    if fmt == "json":
        lines = [r["event"] for r in records(program.stdout) if r.get("stream") == "stdout"]
        assert lines == [*expected, "\ufffd\ufffd not utf-8"]
    else:
        assert 'event="quote \\" and backslash \\\\" worker=odd' in program.stdout
        assert "event=ünïcødé" not in program.stdout and 'event="ünïcødé ✓"' in program.stdout
