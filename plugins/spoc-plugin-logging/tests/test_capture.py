"""Capture at the fd level: nothing written before a SIGKILL is lost, long lines arrive whole, crashes tell why."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from harness import App
from runs import records, spoc_run


def test_every_line_written_before_a_sigkill_arrives(app_factory: type[App], tmp_path: Path, start_method: str) -> None:
    side = tmp_path / "written"
    env = {"SPOC_TEST_SIDE": str(side), "SPOC_TEST_START_METHOD": start_method}
    program = spoc_run(app_factory, "flood_kill", "--log-format", "json", env=env)
    (line,) = program.expect(r'"event":"20000","worker":"flood","pid":(\d+)')  # killed while it floods
    os.kill(int(line.group(1)), signal.SIGKILL)
    noted = int(side.read_text())  # the worker wrote at least this many lines before it was killed
    assert program.wait() == 1
    stream = records(program.stdout)
    numbers = [int(r["event"]) for r in stream if r.get("worker") == "flood" and r.get("stream") == "stdout"]
    assert len(numbers) >= noted >= 20_000
    assert numbers == list(range(len(numbers)))  # none lost, none twice, in order
    (exited,) = [r for r in stream if r.get("lifecycle") == "exited"]
    assert (exited["outcome"], exited["signal"]) == ("killed", "SIGKILL")
    assert exited["tail"] == [str(n) for n in numbers[-50:]]  # the last lines come with the death


def test_a_64_kib_line_arrives_whole_while_another_child_writes_too(app_factory: type[App], start_method: str) -> None:
    env = {"SPOC_TEST_START_METHOD": start_method}
    program = spoc_run(app_factory, "long_lines", "--log-format", "json", env=env)
    assert program.wait() == 0, program.stderr[-2000:]
    lines = [r for r in records(program.stdout) if r.get("stream") == "stdout"]
    assert sorted(r["worker"] for r in lines) == ["a-writer"] * 20 + ["b-writer"] * 20
    for record in lines:
        assert record["event"] == record["worker"][0] * 65536 and "partial" not in record


@pytest.mark.parametrize("crash", ["segfault", "abort"])
def test_a_crash_s_trace_is_attributed_to_the_worker_and_its_last_lines_come_with_its_end(
    app_factory: type[App], crash: str, start_method: str
) -> None:
    program = spoc_run(app_factory, crash, "--log-format", "json", env={"SPOC_TEST_START_METHOD": start_method})
    assert program.wait() == 1
    mine = [r for r in records(program.stdout) if r.get("worker") == "crasher"]
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
    app_factory: type[App], fmt: str, start_method: str
) -> None:
    program = spoc_run(app_factory, "setup_fails", "--log-format", fmt, env={"SPOC_TEST_START_METHOD": start_method})
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
def test_lines_json_must_escape_and_bytes_that_are_not_utf8_arrive_as_written(app_factory: type[App], fmt: str) -> None:
    program = spoc_run(app_factory, "odd_lines", "--log-format", fmt)
    assert program.wait() == 0, program.stderr
    expected = ['quote " and backslash \\', "tab\there", "ünïcødé ✓", "\x07bell", "emoji 🎉", "", "  spaced  "]
    if fmt == "json":
        lines = [r["event"] for r in records(program.stdout) if r.get("stream") == "stdout"]
        assert lines == [*expected, "\ufffd\ufffd not utf-8"]
    else:
        assert 'event="quote \\" and backslash \\\\" worker=odd' in program.stdout
        assert "event=ünïcødé" not in program.stdout and 'event="ünïcødé ✓"' in program.stdout
