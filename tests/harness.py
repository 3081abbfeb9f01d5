"""Test harness: run a program in its own session, read its markers, signal it, and account for every process.

The pytest process makes itself a child subreaper, so any process a test
orphans is reparented to it; `children_of_this_process()` then sees it and the
no-leftover check can wait for it, by pidfd, with a deadline.
"""

from __future__ import annotations

import logging
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"


def children_of_this_process() -> dict[int, str]:
    """Pid -> command line of every live or zombie child of the test process."""
    me = os.getpid()
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid != me:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue
        found[int(entry)] = cmdline
    return found


def is_multiprocessing_helper(cmdline: str) -> bool:
    """multiprocessing's long-lived helpers (fork server, resource tracker) are not leaks."""
    return "multiprocessing.forkserver" in cmdline or "multiprocessing.resource_tracker" in cmdline


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait (on a pidfd, not by polling) until `pid` has exited; reap it if it is our child."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        _reap(pid)
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    _reap(pid)
    return bool(readable)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def assert_no_survivors(before: Sequence[int] = (), timeout: float = 10.0) -> None:
    """Fail if a child (or orphaned descendant) that was not there `before` outlives `timeout`."""
    deadline = time.monotonic() + timeout
    survivors: dict[int, str] = {}
    for pid, cmdline in children_of_this_process().items():
        if pid in before or is_multiprocessing_helper(cmdline):
            continue
        if not wait_gone(pid, max(0.0, deadline - time.monotonic())):
            survivors[pid] = cmdline
    for pid in survivors:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_gone(pid, 5.0)
    assert not survivors, f"processes left behind: {survivors}"


class App:
    """A Python program run in its own session (its own process group), as a terminal would run it."""

    def __init__(
        self,
        *args: str,
        script: Path | str = APPS / "faults.py",
        env: dict[str, str] | None = None,
        command: Sequence[str] | None = None,
        cwd: Path | str = ROOT,
    ) -> None:
        """Run ``python script *args``, or `command` (a whole argv) when it is given."""
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            list(command) if command is not None else [sys.executable, str(script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=full_env,
            cwd=str(cwd),
        )
        self.pid = self.proc.pid
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream: object) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            with self._changed:
                self._lines[name].append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stdout(self) -> str:
        with self._changed:
            return "\n".join(self._lines["stdout"])

    @property
    def stderr(self) -> str:
        with self._changed:
            return "\n".join(self._lines["stderr"])

    def expect(
        self, pattern: str, timeout: float = 30.0, stream: str = "stdout", count: int = 1
    ) -> list[re.Match[str]]:
        """Wait until `count` lines of `stream` match `pattern`; return the matches."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                matches = [m for m in map(regex.search, self._lines[stream]) if m]
                if len(matches) >= count:
                    return matches
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not any(r.is_alive() for r in self._readers)):
                    raise AssertionError(
                        f"{len(matches)}/{count} lines matching {pattern!r} on {stream} within {timeout}s\n"
                        f"--- stdout\n{self.stdout_unlocked()}\n--- stderr\n{self.stderr_unlocked()}"
                    )
                self._changed.wait(remaining)

    def stdout_unlocked(self) -> str:
        return "\n".join(self._lines["stdout"])

    def stderr_unlocked(self) -> str:
        return "\n".join(self._lines["stderr"])

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the whole process group, as Ctrl+C in a terminal does."""
        os.killpg(self.pid, signum)

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the program to exit; return its exit code (negative: killed by that signal)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"program did not exit within {timeout}s\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
            ) from None
        for reader in self._readers:
            reader.join(5.0)
        return code

    def close(self) -> None:
        """Make sure the program and its process group are gone."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def children(pid: int) -> set[int]:
    """The children of process `pid`, whichever of its threads made them (multiprocessing's resource tracker,
    which its spawn starts, left out)."""
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as file:
                found.update(int(child) for child in file.read().split())
        except FileNotFoundError:  # a thread that has ended
            pass
    return {child for child in found if "resource_tracker" not in _cmdline(child)}


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def fork_server(app: App, workers: set[int]) -> int:
    """The pid of `app`'s server's fork server: its one child that runs none of `workers`."""
    (found,) = children(app.pid) - workers
    return found


def readies(app: App, count: int) -> list[int]:
    """The pids of the first `count` runs of ``orders-1`` of tests/apps/fork_server_death.py, each of which
    found the program's lock free (never forked from the threaded server)."""
    matches = app.expect(r"READY orders-1 pid=(\d+) lock=(\w+)", count=count, timeout=20)
    assert [m.group(2) for m in matches] == ["free"] * count, app.stdout
    return [int(m.group(1)) for m in matches]


def ready_pids(app: App, count: int) -> dict[str, int]:
    """Wait for `count` ``READY <name> pid=<pid>`` markers (the fault app's); return name -> pid."""
    return {m.group(1): int(m.group(2)) for m in app.expect(r"READY (\S+) pid=(\d+)", count=count)}


# ---------------------------------------------------------------------- fixtures (conftest.py files import them)

HELPER_THREADS = ("QueueFeederThread", "Thread-")
"""Daemon threads that are not leaks: multiprocessing queue feeders, the harness's pipe readers."""


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    """Fail a test that leaves a process or a thread (a worker's, an endpoint's) running."""
    processes_before = set(children_of_this_process())
    threads_before = set(threading.enumerate())
    yield
    assert_no_survivors(tuple(processes_before))
    deadline = time.monotonic() + 10.0
    for thread in set(threading.enumerate()) - threads_before:
        if thread.daemon and thread.name.startswith(HELPER_THREADS):
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        assert not thread.is_alive(), f"thread left running: {thread.name}"


@pytest.fixture
def app_factory() -> Iterator[type[App]]:
    """Start programs with `app_factory(*args, ...)` (`App`'s arguments); each is killed with its group at the end."""
    started: list[App] = []

    def make(*args: str, **kwargs: object) -> App:
        app = App(*args, **kwargs)  # type: ignore[arg-type]
        started.append(app)
        return app

    yield make  # type: ignore[misc]
    for app in started:
        app.close()


class LogLines(logging.Handler):
    """Collects a logger's lines; `wait_for` blocks until one contains a text (a marker, never a sleep)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.lines.append(record.getMessage())
            self.changed.notify_all()

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        with self.changed:
            if not self.changed.wait_for(lambda: any(text in line for line in self.lines), timeout):
                raise TimeoutError(f"no log line with {text!r} within {timeout:g}s; lines: {self.lines}")
            return next(line for line in self.lines if text in line)


@contextmanager
def log_lines(logger: str, level: int = logging.DEBUG) -> Iterator[LogLines]:
    """The lines `logger` logs inside the block, at `level` and above."""
    handler = LogLines()
    target = logging.getLogger(logger)
    previous = target.level
    target.addHandler(handler)
    target.setLevel(min(level, previous) if previous else level)
    try:
        yield handler
    finally:
        target.removeHandler(handler)
        target.setLevel(previous)
