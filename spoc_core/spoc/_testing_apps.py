"""The test kit: a program run as a user runs it, the check that a test leaves no process behind, log lines.

The fixtures over them (``spoc_app``, ``spoc_no_leftovers``,
``spoc_start_method``) are in `spoc.testing`.
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

from ._linux import set_child_subreaper

__all__ = [
    "HELPER_THREADS",
    "App",
    "Leftovers",
    "LogLines",
    "assert_no_survivors",
    "children",
    "children_of_this_process",
    "log_lines",
    "wait_gone",
]

HELPER_THREADS = ("QueueFeederThread", "Thread-")
"""Daemon threads that are not leaks: multiprocessing's queue feeders, and `App`'s pipe readers."""


class App:
    """A program run in its own session (its own process group), as a terminal or a service manager runs it.

    ``App(*args, script=path)`` runs ``python path *args``; ``App(command=[...])``
    runs a whole argv (``["spoc", "run", "tasks:server"]``). Its stdout and
    stderr are read as they come, so a test waits for a line (`expect`)
    instead of sleeping, signals it as operators do (`signal` to the pid,
    `signal_group` to the group, as Ctrl+C does) and reads its exit code
    (`wait`). `close` kills the group if it still runs; the ``spoc_app``
    fixture closes every program it started.

    Args:
        script: the Python program to run (with `args`).
        command: a whole argv instead of a script.
        env: variables set on top of this process's environment
            (``PYTHONUNBUFFERED=1`` is always set, so that lines come at once).
        cwd: where it runs (default: this process's directory).
    """

    def __init__(
        self,
        *args: str,
        script: Path | str | None = None,
        command: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | str | None = None,
    ) -> None:
        if (script is None) == (command is None):
            raise TypeError(
                "App() takes script=, a program to run with python, or command=[...], a whole argv; give one"
            )
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        argv = list(command) if command is not None else [sys.executable, str(script), *args]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=full_env,
            cwd=None if cwd is None else str(cwd),
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

    def __repr__(self) -> str:
        return f"<App pid={self.pid} {self.proc.args!r}>"

    def _read(self, name: str, stream: object) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            with self._changed:
                self._lines[name].append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stdout(self) -> str:
        """What it wrote to stdout so far, its lines joined."""
        with self._changed:
            return "\n".join(self._lines["stdout"])

    @property
    def stderr(self) -> str:
        """What it wrote to stderr so far, its lines joined."""
        with self._changed:
            return "\n".join(self._lines["stderr"])

    def expect(
        self, pattern: str, timeout: float = 30.0, stream: str = "stdout", count: int = 1
    ) -> list[re.Match[str]]:
        """Wait until `count` lines of `stream` (``"stdout"`` or ``"stderr"``) match `pattern`; return the matches.

        Raises:
            AssertionError: not within `timeout` seconds, or the program ended first; with what it wrote.
        """
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
                        f"--- stdout\n{self._text('stdout')}\n--- stderr\n{self._text('stderr')}"
                    )
                self._changed.wait(remaining)

    def _text(self, stream: str) -> str:
        return "\n".join(self._lines[stream])

    def signal(self, signum: int) -> None:
        """Send `signum` to the program's process, as ``kill PID`` does."""
        os.kill(self.pid, signum)

    def signal_group(self, signum: int) -> None:
        """Send `signum` to its whole process group, as Ctrl+C in a terminal does."""
        os.killpg(self.pid, signum)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the program to exit; return its exit code (negative: killed by that signal).

        Raises:
            AssertionError: it did not exit within `timeout` seconds; with what it wrote.
        """
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
        """Make sure the program and its process group are gone, and its pipes closed."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def children_of_this_process() -> dict[int, str]:
    """Pid -> command line of every live or zombie child of this process (orphans included, once it is a
    subreaper: `Leftovers`)."""
    return {child: _cmdline(child).replace("\0", " ").strip() for child in _children_by_ppid(os.getpid())}


def children(pid: int) -> set[int]:
    """The children of process `pid`, whichever of its threads made them (multiprocessing's resource tracker,
    which its spawn starts, left out)."""
    return {child for child in _children_by_ppid(pid) if "resource_tracker" not in _cmdline(child)}


def _children_by_ppid(pid: int) -> list[int]:
    """Every process whose parent is `pid`, read from each process's own /proc/PID/stat.

    Not from /proc/PID/task/TID/children: a child made by a thread moves to another thread's list when that
    thread ends, so a reader that goes through the threads one by one can miss it (a flaky test did)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
        except (OSError, IndexError, ValueError):  # a process that has ended
            continue
    return found


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().decode(errors="replace")
    except OSError:  # a process that has ended
        return ""


def _is_multiprocessing_helper(cmdline: str) -> bool:
    """multiprocessing's long-lived helpers (its fork server, resource tracker) are not leaks."""
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
    """Fail when a child (or an orphaned descendant) that was not there `before` outlives `timeout`; kill it."""
    deadline = time.monotonic() + timeout
    survivors: dict[int, str] = {}
    for pid, cmdline in children_of_this_process().items():
        if pid in before or _is_multiprocessing_helper(cmdline):
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


class Leftovers:
    """Note this process's children and threads now; `verify` fails when new ones outlive a deadline.

    It makes this process a child subreaper first, so that a process a test
    orphans (a worker's child whose parent died) is seen too, and waited for.
    """

    def __init__(self) -> None:
        set_child_subreaper()
        self.processes = set(children_of_this_process())
        self.threads = set(threading.enumerate())

    def verify(self, timeout: float = 10.0) -> None:
        """Fail when a process or a (non-helper) thread started since is still running `timeout` seconds from now."""
        assert_no_survivors(tuple(self.processes), timeout)
        deadline = time.monotonic() + timeout
        for thread in set(threading.enumerate()) - self.threads:
            if thread.daemon and thread.name.startswith(HELPER_THREADS):
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), f"thread left running: {thread.name}"


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
