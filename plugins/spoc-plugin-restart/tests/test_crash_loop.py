"""Crash loops: a supervised worker that fails at once neither spins the CPU nor leaks, however long."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).parent / "apps" / "crash_loop.py"


def marks(process: subprocess.Popen[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """The app's marker lines, parsed: ("EXITED", {"n": "3", "fds": "9", ...})."""
    assert process.stdout is not None
    for line in process.stdout:
        kind, *fields = line.split()
        values = dict(field.split("=", 1) for field in fields if "=" in field)
        values["n"] = fields[0] if fields and "=" not in fields[0] else ""
        yield kind, values


def run_app(tmp_path: Path, mode: str, count: int) -> list[tuple[str, dict[str, str]]]:
    """Run the app in its own session; return its markers; leave nothing running."""
    log = tmp_path / "stderr.txt"  # one traceback per failure: kept for a failing test's report
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(APP), mode, str(count)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        seen = list(marks(process))
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
        return seen
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.timeout(90)
def test_a_crash_loop_with_the_backoff_capped_uses_under_5_percent_of_a_core(tmp_path: Path) -> None:
    seen = dict((int(v["n"]), v) for kind, v in run_app(tmp_path, "cpu", 30) if kind == "EXITED")
    first, last = seen[5], seen[29]
    cpu = float(last["cpu"]) - float(first["cpu"])
    wall = float(last["at"]) - float(first["at"])
    assert wall >= 24 * 0.1  # the cap held the loop back
    assert cpu / wall < 0.05, f"the server used {cpu:.3f}s of CPU in {wall:.2f}s of a crash loop"


@pytest.mark.timeout(120)
def test_300_restarts_leak_no_fd_thread_memory_or_zombie(tmp_path: Path) -> None:
    seen = run_app(tmp_path, "leak", 300)
    exits = {int(v["n"]): v for kind, v in seen if kind == "EXITED"}
    assert sorted(exits) == list(range(300))
    early, late = exits[10], exits[299]
    assert int(late["fds"]) <= int(early["fds"]), (early, late)
    assert int(late["threads"]) <= int(early["threads"]), (early, late)
    assert int(late["rss_kib"]) - int(early["rss_kib"]) < 2048, (early, late)  # allocator noise, not 300 of anything
    (zombies,) = [v["n"] for kind, v in seen if kind == "ZOMBIES"]
    assert zombies == "0"
    assert ("DONE", {"n": "stop"}) in seen
