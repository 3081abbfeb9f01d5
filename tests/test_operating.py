"""Operating a running server from outside its workers (issue 31): `Server.status`, `stop_worker`,
`start_worker`, `reload` and `worker_stack`, which ``spoc ctl`` and the status routes are built on."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from spoc import Server, ServerExit, WorkerStatus, hookimpl
from spoc.testing import HookRecorder, ServerFactory
from workers_for_tests import Gated, IgnoresStop, Raises, WaitsForStop, WaitsForStopProcess

pytestmark = pytest.mark.timeout(60)


def states(server: Server) -> dict[str, str]:
    return {status.name: status.state for status in server.status()}


def one(server: Server, name: str) -> WorkerStatus:
    return next(status for status in server.status() if status.name == name)


class RestartsEverything:
    """A supervisor that restarts every worker that ends, unless its server stopped it (`stopped_by`)."""

    name = "restarts-everything"

    def __init__(self) -> None:
        self.said: list[Any] = []

    @hookimpl
    def worker_exited(self, server: Server, worker: Any) -> None:
        self.said.append(server.stopped_by(worker))
        if server.stopped_by(worker) is None:
            server.restart_worker(worker)


def test_status_follows_a_worker_through_its_life(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    setup_gate, teardown_gate = threading.Event(), threading.Event()
    gated = Gated("gated", setup_gate, teardown_gate)
    server = spoc_server(gated)
    assert states(server) == {"gated": "starting"}
    server.start()
    assert states(server) == {"gated": "starting"}
    setup_gate.set()
    spoc_hooks.wait_for("worker_started", worker="gated")
    status = one(server, "gated")
    assert (status.state, status.backend, status.worker, status.restarts) == ("running", "thread", "gated", 0)
    assert status.uptime() is not None and status.since is not None
    assert (status.rss, status.cpu, status.last_exit, status.error) == (None, None, None, None)  # a thread
    assert server.stop_worker(gated)
    spoc_hooks.wait_for("worker_stopping", worker="gated")
    assert states(server) == {"gated": "stopping"}
    teardown_gate.set()
    spoc_hooks.wait_for("worker_exited", worker="gated")
    status = one(server, "gated")
    assert status.state == "stopped" and status.uptime() is None
    assert status.last_exit_line == "stopped (exit code 0)"
    assert set(status.to_json()) == {
        "name", "worker", "backend", "state", "pid", "since", "uptime", "restarts", "last_exit", "error", "rss", "cpu"
    }  # fmt: skip


def test_a_process_worker_shows_its_pid_memory_and_cpu(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    ready = __import__("multiprocessing").Event()
    server = spoc_server(WaitsForStopProcess("p", ready))
    server.start()
    spoc_hooks.wait_for("worker_started", worker="p")
    status = one(server, "p")
    assert status.pid == server.workers[0].pid  # type: ignore[attr-defined]
    assert status.rss is not None and status.rss > 1_000_000 and status.cpu is not None


def test_a_failed_worker_nothing_restarts_is_given_up_with_its_error(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    server = spoc_server(Raises("raises"), WaitsForStop("keeps"), allow_errors=True)
    server.start()
    spoc_hooks.wait_for("worker_exited", worker="raises")
    status = one(server, "raises")
    assert status.state == "given up"
    assert status.error is not None and status.error.phase == "main"
    assert status.last_exit_line is not None and status.last_exit_line.startswith("failed (exit code 1) in main: ")
    assert status.to_json()["error"]["traceback"] == status.error.traceback


def test_a_restart_waiting_out_its_delay_says_so(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    class RestartsLater:
        name = "restarts-later"

        @hookimpl
        def worker_exited(self, server: Server, worker: Any) -> None:
            if worker.restarts == 0:
                server.restart_worker(worker, delay=30)

    server = spoc_server(Raises("raises"), plugins=[RestartsLater()], allow_errors=True)
    server.start()
    spoc_hooks.wait_for("worker_exited", worker="raises")
    status = one(server, "raises")
    assert (status.state, status.restarts) == ("waiting to restart", 1)
    assert status.last_exit is not None and status.last_exit.outcome == "failed"


def test_a_stopped_worker_stays_stopped_until_started(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    supervisor = RestartsEverything()
    first = WaitsForStop("w")
    server = spoc_server(first, WaitsForStop("other"), plugins=[supervisor])
    server.start()
    spoc_hooks.wait_for("worker_started", worker="w")
    assert server.stop_worker(first) is True
    assert server.stop_worker(first) is False  # once: it is stopping already
    spoc_hooks.wait_for("worker_exited", worker="w")
    assert supervisor.said == ["stop"]  # the supervisor was told, and left it alone
    assert server.stopped_by(first) is None  # said until its worker_exited hooks have run
    assert states(server) == {"w": "stopped", "other": "running"}
    fresh = server.start_worker("w")
    started = spoc_hooks.wait_for("worker_started", worker=lambda w: w is fresh)
    assert started["worker"].restarts == 0 and fresh.previous_exit is first.exit_info
    assert states(server) == {"w": "running", "other": "running"}


def test_start_worker_refuses_what_it_cannot_start(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    server = spoc_server(WaitsForStop("w"))
    with pytest.raises(Exception, match="is not running; worker 'w' cannot be started"):
        server.start_worker("w")
    server.start()
    spoc_hooks.wait_for("worker_started", worker="w")
    with pytest.raises(ValueError, match="worker 'w' is running already; stop it first"):
        server.start_worker("w")
    with pytest.raises(ValueError, match=r"no worker named 'nope' \(its workers: 'w'\)"):
        server.start_worker("nope")


def test_run_forever_runs_on_while_its_only_worker_is_stopped(spoc_hooks: HookRecorder) -> None:
    only = WaitsForStop("only")
    server = Server("held", plugins=[spoc_hooks])
    server.add_worker(only)
    outcome: list[ServerExit] = []
    runner = threading.Thread(target=lambda: outcome.append(server.run_forever(shutdown_timeout=10)))
    runner.start()
    try:
        spoc_hooks.wait_for("worker_started", worker="only")
        server.stop_worker(only)
        spoc_hooks.wait_for("worker_exited", worker="only")
        runner.join(0.3)  # a wait for something not to happen: run_forever must still be running
        assert runner.is_alive() and not outcome
        server.start_worker("only")
        spoc_hooks.wait_for("worker_started", worker=lambda w: w is not only and w.name == "only")
    finally:
        server.stop()
        runner.join(30)
    assert outcome and outcome[0].ok


def test_a_stopped_worker_past_the_deadline_is_ended_and_stays_stopped(spoc_hooks: HookRecorder) -> None:
    server = Server("held", plugins=[spoc_hooks])
    server.add_worker(IgnoresStop("stubborn", start_method="spawn"))
    server.add_worker(WaitsForStop("other"))
    runner = threading.Thread(target=lambda: server.run_forever(shutdown_timeout=0.5))
    runner.start()
    try:
        spoc_hooks.wait_for("worker_started", worker="stubborn")
        assert server.stop_worker(server.workers[0])
        exited = spoc_hooks.wait_for("worker_exited", worker="stubborn")
        assert exited["exit_info"].outcome == "killed"
        assert states(server) == {"stubborn": "stopped", "other": "running"}
    finally:
        server.stop()
        runner.join(30)


@pytest.mark.parametrize("kind", ["thread", "fork"])
def test_worker_stack_returns_where_the_body_is(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, kind: str
) -> None:
    ready = __import__("multiprocessing").Event()
    worker = WaitsForStop("w") if kind == "thread" else WaitsForStopProcess("w", ready, start_method="fork")
    server = spoc_server(worker)
    server.start()
    spoc_hooks.wait_for("worker_started", worker="w")
    deadline = time.monotonic() + 30
    stack = server.worker_stack(worker)  # its startup hook may come while it still sends its startup event
    while (stack is None or "self.wait(60)" not in stack) and time.monotonic() < deadline:
        stack = server.worker_stack(worker)
    assert stack is not None and "in main" in stack and "self.wait(60)" in stack


def test_worker_stack_of_an_ended_worker_is_none(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    worker = WaitsForStop("w")
    server = spoc_server(worker)
    server.start()
    spoc_hooks.wait_for("worker_started", worker="w")
    server.stop_worker(worker)
    spoc_hooks.wait_for("worker_exited", worker="w")
    assert server.worker_stack(worker) is None


def test_reload_replaces_every_worker_and_says_when_done(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    first = WaitsForStop("w")
    server = spoc_server(first)
    server.start()
    spoc_hooks.wait_for("worker_started", worker="w")
    server.reload()
    spoc_hooks.wait_for("worker_started", worker=lambda w: w is not first and w.name == "w")
    spoc_hooks.wait_for("worker_exited", worker="w")
    assert first.exit_info is not None and first.exit_info.outcome == "stopped"
    assert spoc_hooks.of("server_reloading")


def test_importing_spoc_commands_loads_no_server() -> None:
    """``spoc ctl`` imports `spoc.commands` and must not pay for the server's imports (pluggy, asyncio)."""
    code = "import sys, spoc.commands; print([m for m in ('spoc._server', 'pluggy', 'asyncio') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.strip() == "[]"


SYNC_SERVER = """
import sys
from spoc import ProcessWorker, Server, ThreadWorker

class Child(ProcessWorker):
    def main(self):
        print("child", "asyncio" in sys.modules, flush=True)

class Thread(ThreadWorker):
    def main(self):
        self.wait(0.01)

server = Server("sync")
server.add_worker(Child("child", start_method="fork"))
server.add_worker(Thread("thread"))
server.start()
server.join_all(30)
server.stop()
print("server", "asyncio" in sys.modules, flush=True)
"""


def test_a_server_of_sync_workers_never_loads_asyncio() -> None:
    """asyncio (and the ssl it loads) is about 3 MB of every process's memory: a program of sync workers, its
    server and its children, never loads it (a SIGKILLed child takes longer to free a bigger process)."""
    out = subprocess.run(
        [sys.executable, "-c", SYNC_SERVER], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert sorted(out.split("\n")[:-1]) == ["child False", "server False"], out


def test_running_servers_lists_those_started_and_not_stopped(spoc_hooks: HookRecorder) -> None:
    first, second = Server("first", plugins=[spoc_hooks]), Server("second", plugins=[spoc_hooks])
    for server in (first, second):
        server.add_worker(WaitsForStop(f"{server.name}-w"))
    assert first not in Server.running_servers()
    first.start()
    second.start()
    try:
        assert [s for s in Server.running_servers() if s in (first, second)] == [first, second]
    finally:
        first.stop()
        first.join_all()
    assert first not in Server.running_servers() and second in Server.running_servers()
    second.stop()
    second.join_all()
    assert second not in Server.running_servers()


def test_monitor_answers_unless_a_hook_holds_it(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    held, release = threading.Event(), threading.Event()

    class HoldsTheMonitor:
        name = "holds-the-monitor"

        @hookimpl
        def worker_stopping(self, server: Server, worker: Any) -> None:
            held.set()
            release.wait(30)

    worker = WaitsForStop("w")
    server = spoc_server(worker, WaitsForStop("other"), plugins=[HoldsTheMonitor()])
    assert server.monitor_answers(0.1) is False  # not running
    server.start()
    spoc_hooks.wait_for("worker_started", worker="w")
    assert server.monitor_answers() is True and server.shutting_down is False
    server.stop_worker(worker)
    assert held.wait(10)
    try:
        assert server.monitor_answers(0.2) is False
    finally:
        release.set()
    assert server.monitor_answers() is True
    server.stop()
    assert server.shutting_down is True
