"""The fork server's standby: the next ``fork`` child, forked ahead of need, takes the next restart (issue 33,
point 1: a restart then waits for no fork)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from capturing import CapturesOutput
from spoc import ProcessWorker, Server, hookimpl
from spoc.testing import HookRecorder, ServerFactory
from workers_for_tests import WritesBothStreams

pytestmark = pytest.mark.timeout(60)


class Reports(ProcessWorker):
    """Tells the server its pid and how often it was restarted, then waits to be stopped."""

    def main(self) -> None:
        self.send_record("test.running", pid=os.getpid(), restarts=self.restarts, previous=self.previous_outcome())
        self.wait()

    def previous_outcome(self) -> str | None:
        return None if self.previous_exit is None else self.previous_exit.outcome


class RestartsKilled:
    """A minimal supervisor: restart a worker that was killed, at once."""

    name = "restarts-killed"

    @hookimpl
    def worker_exited(self, server: Server, worker: Any, exit_info: Any) -> None:
        if exit_info.outcome == "killed":
            server.restart_worker(worker)


def children_of(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return {int(child) for child in children.read().split()}
    except FileNotFoundError:
        return set()


def cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode().strip()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def standby_of(server: Server, fork_server: int, worker: int, timeout: float = 10.0) -> int:
    """The fork server's child that is not `worker`: its standby, forked a moment after the last request (and
    titled so, with setproctitle)."""
    deadline = time.monotonic() + timeout
    title = f"spoc: {server.name} standby" if _has_setproctitle() else None
    while time.monotonic() < deadline:
        others = children_of(fork_server) - {worker}
        if others:
            (standby,) = others
            if title is None or cmdline(standby) == title:
                return standby
        time.sleep(0.005)  # polling the kernel's list of children and their titles: nothing signals either
    raise AssertionError(f"fork server {fork_server} forked no standby beside worker {worker}")


def running(hooks: HookRecorder, restarts: int) -> dict[str, Any]:
    data: dict[str, Any] = hooks.wait_for(
        "worker_record", worker="body", topic="test.running", data={"restarts": restarts}
    )["data"]
    return data


def started_with_a_fork_server(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> tuple[Server, int]:
    """A server whose fork worker was killed once, so restarted from the fork server; and that fork server."""
    before = children_of(os.getpid())
    server = spoc_server(Reports("body", start_method="fork"), plugins=[RestartsKilled()], allow_errors=True)
    server.start()
    first = running(spoc_hooks, 0)["pid"]
    (fork_server,) = children_of(os.getpid()) - before - {first}
    os.kill(first, signal.SIGKILL)
    assert os.getppid() != fork_server and running(spoc_hooks, 1)["pid"] in children_of(fork_server)
    return server, fork_server


def test_a_restart_takes_the_standby_forked_ahead(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    server, fork_server = started_with_a_fork_server(spoc_server, spoc_hooks)
    worker = running(spoc_hooks, 1)["pid"]
    standby = standby_of(server, fork_server, worker)
    os.kill(worker, signal.SIGKILL)
    again = running(spoc_hooks, 2)
    assert again["pid"] == standby and again["previous"] == "killed"
    assert server.workers[0].pid == standby
    assert cmdline(standby).startswith(f"spoc: {server.name}/body") or not _has_setproctitle()
    next_standby = standby_of(server, fork_server, standby)  # and the one after it
    server.stop()
    assert server.join_all(10) == []
    assert not alive(next_standby) and not alive(fork_server)


def test_a_standby_killed_from_outside_is_replaced(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    server, fork_server = started_with_a_fork_server(spoc_server, spoc_hooks)
    worker = running(spoc_hooks, 1)["pid"]
    standby = standby_of(server, fork_server, worker)
    os.kill(standby, signal.SIGKILL)
    os.kill(worker, signal.SIGKILL)
    replacement = running(spoc_hooks, 2)["pid"]  # forked: the standby's death was noticed, or its socket refused
    assert replacement not in (standby, worker) and replacement in children_of(fork_server)
    os.kill(replacement, signal.SIGKILL)
    assert running(spoc_hooks, 3)["pid"] != replacement
    server.stop()
    assert server.join_all(10) == []
    assert [e.outcome for e in spoc_hooks.of("server_stopped")[0]["exits"]] == ["stopped"]


def test_a_worker_added_later_is_pickled_to_the_standby(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    """A worker the fork server does not hold travels pickled; the standby unpickles it, as a fork would."""
    server, fork_server = started_with_a_fork_server(spoc_server, spoc_hooks)
    standby = standby_of(server, fork_server, running(spoc_hooks, 1)["pid"])
    server.add_worker(Reports("late", start_method="fork"))
    late = spoc_hooks.wait_for("worker_record", worker="late", topic="test.running")["data"]
    assert late["pid"] == standby and late["restarts"] == 0
    server.stop()
    assert server.join_all(10) == []


def test_the_standby_writes_to_the_plugins_pipes(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    """The stdout and stderr a plugin gives a child (worker_stdio) reach the standby with the request."""
    capture = CapturesOutput()
    before = children_of(os.getpid())
    server = spoc_server(WritesBothStreams("writer", start_method="fork"), plugins=[capture])
    server.start()
    pids = [spoc_hooks.wait_for("worker_started", worker="writer")["event"].pid]
    (fork_server,) = children_of(os.getpid()) - before - set(pids)
    standby = 0
    for restarts in (1, 2):  # the first from a fork, the second from the standby forked after it
        spoc_hooks.wait_for("worker_exited", worker=lambda w, n=restarts: w.restarts == n - 1)
        if restarts == 2:
            standby = standby_of(server, fork_server, pids[-1])
        assert server.restart_worker(server.workers[0]) is not None
        started = spoc_hooks.wait_for("worker_started", worker=lambda w, n=restarts: w.restarts == n)
        pids.append(started["event"].pid)
    spoc_hooks.wait_for("worker_exited", worker=lambda w: w.restarts == 2)
    server.stop()
    assert server.join_all(10) == []
    assert pids[2] == standby
    assert capture.output[1].decode().splitlines() == [f"out writer {pid}" for pid in pids]
    assert capture.output[2].decode().splitlines() == [f"err writer {pid}" for pid in pids]
    assert capture.at_end == [True] * 6


def _has_setproctitle() -> bool:
    try:
        import setproctitle  # noqa: F401
    except ImportError:
        return False
    return True
