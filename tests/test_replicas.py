"""Replicas (issue 30): N copies of one worker, scaled while the service runs, under a real ``spoc run``.

The programs are tests/apps/replicas.py, each in its own session; scaling commands reach them through a FIFO
read by a worker of theirs, so `Server.scale` is called from a worker's thread while the server runs.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import APPS, App
from spoc import AbstractWorker, ProcessWorker, ReplicaCount, Server, SpocError, ThreadWorker, hookimpl
from spoc.testing import HookRecorder, ServerFactory

pytestmark = [pytest.mark.signals, pytest.mark.timeout(90)]

READY = r"READY {} replica=(\d+) pid=(\d+)"


@pytest.fixture
def control(tmp_path: Path) -> Iterator[Path]:
    fifo = tmp_path / "control"
    os.mkfifo(fifo)
    yield fifo


def spoc_run(app_factory: Callable[..., App], target: str, control: Path, *options: str, **env: str) -> App:
    command = [sys.executable, "-m", "spoc", "run", f"{APPS / 'replicas.py'}:{target}", *options]
    return app_factory(command=command, env={"CONTROL": str(control), **env})


def send(control: Path, line: str) -> None:
    fd = os.open(control, os.O_WRONLY)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def scale(app: App, control: Path, name: str, count: int, times: int = 1) -> None:
    """Scale `name` to `count` through the program's control worker; `times`: how many SCALED lines of that
    count the program has printed by then."""
    send(control, f"scale {name} {count}")
    app.expect(rf"^SCALED {name} {count}$", count=times)


def pids(app: App, name: str, count: int = 1) -> dict[int, int]:
    """Replica -> pid of the first `count` READY lines of `name`."""
    return {int(m.group(1)): int(m.group(2)) for m in app.expect(READY.format(re.escape(name)), count=count)}


# ---------------------------------------------------------------------- replicas of every kind


def test_replicas_of_threads_async_threads_and_processes(
    app_factory: Callable[..., App], control: Path, spoc_start_method: str
) -> None:
    """`replicas` as a keyword (threads, async threads) and as a class attribute (processes, each start method):
    named <name>-1..N, `self.replica` 1-based, one process each."""
    app = spoc_run(app_factory, "server", control, START_METHOD=spoc_start_method)
    for name in ("threaded-1", "threaded-2", "async-1", "async-2"):
        (replica,) = pids(app, name)
        assert replica == int(name[-1])
    procs = {name: pids(app, name) for name in ("proc-1", "proc-2", "proc-3")}
    assert [next(iter(p)) for p in procs.values()] == [1, 2, 3]
    assert len({next(iter(p.values())) for p in procs.values()} | {app.pid}) == 4, "one process per replica"
    for name, replica in procs.items():  # ps tells the replicas apart
        with open(f"/proc/{replica[int(name[-1])]}/cmdline", "rb") as f:
            assert f.read().replace(b"\0", b" ").decode().strip() == f"spoc: replicas/{name}"
    app.expect("CONTROL ready")
    app.signal(signal.SIGUSR1)  # each replica's stack, under its own name
    for name in ("proc-1", "proc-2", "proc-3"):
        app.expect(rf"stack of worker '{name}' \(process, pid \d+\)", stream="stderr")
    for name in ("threaded-2", "async-2"):
        app.expect(rf"stack of worker '{name}' \(thread", stream="stderr")
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "server 'replicas' stopped (SIGTERM): 8 workers ended cleanly" in app.stderr


# ---------------------------------------------------------------------- Server.scale while it runs


def test_scale_up_and_down_while_running_highest_first_and_gracefully(
    app_factory: Callable[..., App], control: Path
) -> None:
    """Up: the missing replicas start at once. Down: the highest-numbered first, each torn down. To 0 and back."""
    app = spoc_run(app_factory, "server", control)
    pids(app, "proc-3")
    app.expect("CONTROL ready")
    scale(app, control, "proc", 5)
    assert set(pids(app, "proc-4")) == {4} and set(pids(app, "proc-5")) == {5}
    app.expect(r"RUNNING proc 5")
    scale(app, control, "proc", 1)
    app.expect(r"stopping worker 'proc-\d' \(scaled down\)", stream="stderr", count=4)
    stops = re.findall(r"stopping worker 'proc-(\d)' \(scaled down\)", app.stderr)
    assert stops == ["5", "4", "3", "2"], app.stderr
    for name in ("proc-2", "proc-3", "proc-4", "proc-5"):
        app.expect(rf"^TEARDOWN {name}$")
    assert "TEARDOWN proc-1" not in app.stdout
    scale(app, control, "proc", 0)
    app.expect(r"^TEARDOWN proc-1$")
    app.expect(r"RUNNING proc 0")
    scale(app, control, "proc", 2)
    assert len(pids(app, "proc-1", count=2)) == 1 and len(pids(app, "proc-2", count=2)) == 1
    app.expect(r"RUNNING proc 2", count=2)
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "is not restarted" not in app.stderr


def test_a_server_scaled_to_zero_keeps_running_until_scaled_back(
    app_factory: Callable[..., App], control: Path
) -> None:
    """Every replica of the only worker scaled away: `run_forever()` keeps the service up; a scale brings it back."""
    app = spoc_run(app_factory, "single", control)
    pids(app, "proc-1")
    app.expect("CONTROL ready")
    scale(app, control, "proc", 0)
    app.expect(r"^TEARDOWN proc-1$")
    app.expect(r"RUNNING proc 0")
    scale(app, control, "proc", 1)
    pids(app, "proc-1", count=2)
    assert app.proc.poll() is None
    app.signal(signal.SIGINT)
    assert app.wait() == 0, app.stderr


def test_a_scale_down_ends_a_replica_that_will_not_stop_as_a_shutdown_would(
    app_factory: Callable[..., App], control: Path
) -> None:
    """A replica that ignores its stop request: past the shutdown timeout it is terminated, then killed."""
    app = spoc_run(app_factory, "stubborn", control, "--shutdown-timeout", "1")
    pids(app, "stubborn-2")
    app.expect("CONTROL ready")
    scale(app, control, "stubborn", 1)
    app.expect(r"worker 'stubborn-2' did not stop within 1s of the scale-down's request", stream="stderr", timeout=15)
    app.expect(r"worker 'stubborn-2' was killed by SIGKILL while it was stopping", stream="stderr", timeout=15)
    assert "stubborn-1" not in app.stderr.split("scaling worker")[1]
    app.signal(signal.SIGTERM)
    assert app.wait() == 1, app.stderr  # stubborn-1 has to be forced at the shutdown


def test_a_reload_rolls_through_replicas_one_at_a_time(app_factory: Callable[..., App], control: Path) -> None:
    """SIGHUP with 4 replicas: each replaced in turn, and at every moment the hooks tell, 3 or more run."""
    app = spoc_run(app_factory, "rolling", control)
    app.expect(r"RUNNING proc 4")
    app.signal(signal.SIGHUP)
    app.expect(r"server 'rolling': reload done", stream="stderr")
    assert len(pids(app, "proc-4", count=2)) == 1
    after = app.stdout.split("RUNNING proc 4", 1)[1]
    counts = [int(n) for n in re.findall(r"RUNNING proc (\d)", after)]
    assert len(counts) == 8 and min(counts) >= 3, counts
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr


# ---------------------------------------------------------------------- counts at start: --scale, SPOC_SCALE


def test_scale_option_and_environment_set_the_counts_at_start(app_factory: Callable[..., App], control: Path) -> None:
    """``--scale`` over ``SPOC_SCALE`` over the code's count; 0 starts none of a worker."""
    app = spoc_run(
        app_factory, "server", control, "--scale", "proc=1", "--scale", "threaded=3", SPOC_SCALE="proc=4,async=0"
    )
    for name in ("threaded-1", "threaded-2", "threaded-3", "proc-1"):
        pids(app, name)
    app.expect("CONTROL ready")
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "proc-2" not in app.stdout and "async" not in app.stdout
    assert "server 'replicas' starting 5 workers" in app.stderr


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--scale=nope=2", r"--scale nope=2: server 'replicas' has no worker named 'nope' \(its workers: threaded, "),
        ("--scale=proc=-1", r"--scale 'proc=-1': the count '-1' must be a whole number of replicas >= 0"),
        ("--scale=proc=2.5", r"--scale 'proc=2.5': the count '2.5' must be a whole number"),
        ("--scale=proc=true", r"--scale 'proc=true': the count 'true' must be a whole number"),
        ("--scale=proc", r"--scale 'proc': give NAME=N"),
    ],
)
def test_scale_option_usage_errors(app_factory: Callable[..., App], control: Path, option: str, message: str) -> None:
    app = spoc_run(app_factory, "server", control, option)
    assert app.wait() == 2, app.stderr
    assert re.search(message, app.stderr), app.stderr
    assert "READY" not in app.stdout and "Traceback" not in app.stderr


def test_scale_environment_usage_error_names_the_variable(app_factory: Callable[..., App], control: Path) -> None:
    app = spoc_run(app_factory, "server", control, SPOC_SCALE="proc=2,threaded=x")
    assert app.wait() == 2, app.stderr
    assert "SPOC_SCALE 'threaded=x': the count 'x' must be a whole number" in app.stderr


# ---------------------------------------------------------------------- the API in one process


class Idle(ThreadWorker):
    def main(self) -> None:
        while not self.wait(60):
            pass


class Sized(ProcessWorker):
    replicas = 2

    def main(self) -> None:
        pass


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "3"])
@pytest.mark.parametrize("where", ["keyword", "class attribute"])
def test_bad_replicas_raise_at_construction_naming_class_worker_and_value(value: object, where: str) -> None:
    error = ValueError if value in (0, -1) and not isinstance(value, bool) else TypeError
    with pytest.raises(error) as raised:
        if where == "keyword":
            Idle("idle", replicas=value)  # type: ignore[arg-type]
        else:
            type("Bad", (Idle,), {"replicas": value})("idle")
    text = str(raised.value)
    assert ("Idle 'idle'" if where == "keyword" else "Bad 'idle'") in text and repr(value) in text, text


def test_server_lists_instances_and_counts_before_start() -> None:
    server = Server("counts")
    server.add_worker(Idle("idle"))
    server.add_worker(Sized("sized"))
    assert [(w.name, w.replica, w.base_name) for w in server.workers] == [
        ("idle", 1, "idle"),
        ("sized-1", 1, "sized"),
        ("sized-2", 2, "sized"),
    ]
    server.scale("idle", 2)
    server.scale("sized", 1)
    assert [w.name for w in server.workers] == ["idle-1", "idle-2", "sized-1"]
    assert server.replica_counts() == {"idle": ReplicaCount(2, 0), "sized": ReplicaCount(1, 0)}


@pytest.mark.parametrize(
    ("name", "count", "error", "message"),
    [
        ("nope", 1, ValueError, "Server 'api' has no worker named 'nope' to scale (its workers: 'idle')"),
        ("idle-1", 1, ValueError, "has no worker named 'idle-1'"),
        ("idle", -1, ValueError, "scale('idle', -1): the count must be >= 0"),
        ("idle", 1.5, TypeError, "takes a whole number of replicas >= 0, got float: 1.5"),
        ("idle", True, TypeError, "got bool: True"),
    ],
)
def test_bad_scale_calls_name_the_value(name: str, count: object, error: type[Exception], message: str) -> None:
    server = Server("api")
    server.add_worker(Idle("idle", replicas=2))
    with pytest.raises(error) as raised:
        server.scale(name, count)  # type: ignore[arg-type]
    assert message in str(raised.value)


def test_a_replica_name_that_is_another_workers_is_refused() -> None:
    server = Server("clash")
    server.add_worker(Idle("idle-2"))
    with pytest.raises(ValueError, match="already has a worker named 'idle-2', the name of replica 2 of worker 'idle'"):
        server.add_worker(Idle("idle", replicas=2))
    assert [w.name for w in server.workers] == ["idle-2"]
    server.add_worker(Idle("poll", replicas=2))
    with pytest.raises(ValueError, match=r"already has a worker named 'poll-1' \(replica 1 of worker 'poll'\);"):
        server.add_worker(Idle("poll-1"))
    with pytest.raises(ValueError, match="already has a worker named 'poll'; names must be unique"):
        server.add_worker(Idle("poll"))
    assert [w.name for w in server.workers] == ["idle-2", "poll-1", "poll-2"]


def test_a_scale_during_shutdown_is_refused() -> None:
    server = Server("closing")
    server.add_worker(Idle("idle", replicas=2))
    server.start()
    try:
        server.scale("idle", 3)
        assert server.replica_counts()["idle"].desired == 3
        server.stop()
        with pytest.raises(SpocError, match="Server 'closing' is shutting down; worker 'idle' was not scaled to 1"):
            server.scale("idle", 1)
    finally:
        server.stop()
        assert server.join_all(10) == []
    assert [w.exit_info.outcome for w in server.workers if w.exit_info] == ["stopped"] * 3


class HeldInTeardown(ThreadWorker):
    release = threading.Event()
    runs = itertools.count(1)

    def setup(self) -> None:
        if self.replica == 2:
            self.send_record("test.run", run=next(self.runs))

    def main(self) -> None:
        while not self.wait(60):
            pass

    def teardown(self) -> None:
        if self.replica == 2:
            self.release.wait(30)


@pytest.mark.timeout(60)
def test_a_replica_scaled_back_while_it_stops_starts_again_once_it_has_ended(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    server = spoc_server(HeldInTeardown("held", replicas=2))
    server.start()
    spoc_hooks.wait_for("worker_record", worker="held-2", topic="test.run", data={"run": 1})
    first = spoc_hooks.wait_for("worker_started", worker="held-2")["worker"]
    server.scale("held", 1)
    spoc_hooks.wait_for("worker_stopping", worker="held-2")
    server.scale("held", 2)  # held-2 is still in its teardown: it is not started twice
    assert server.replica_counts()["held"] == ReplicaCount(2, 1)
    HeldInTeardown.release.set()
    again = spoc_hooks.wait_for("worker_record", worker="held-2", topic="test.run", data={"run": 2}, timeout=10)
    spoc_hooks.wait_for("worker_started", worker="held-2", timeout=10)  # after the startup event is received
    assert again["worker"] is not first and [w.name for w in server.workers] == ["held-1", "held-2"]
    while server.replica_counts()["held"].running < 2:  # its startup event follows its record
        threading.Event().wait(0.01)
    server.scale("held", 1)  # the new one is a replica like any: a scale-down stops it
    assert server.replica_counts()["held"] == ReplicaCount(1, 1)
    server.stop()
    assert server.join_all(10) == []
    assert [call["worker"] is first for call in spoc_hooks.of("worker_exited", worker="held-2")] == [True, False]


class RefusesFlagged:
    name = "refuses-flagged"

    @hookimpl
    def worker_check(self, worker: AbstractWorker) -> None:
        if getattr(worker, "flagged", False):
            raise ValueError(f"{worker.name} is flagged")


def test_replicas_a_check_refuses_on_a_running_server_leave_no_trace(spoc_server: ServerFactory) -> None:
    server = spoc_server(Idle("idle"), plugins=[RefusesFlagged()], allow_errors=True)
    server.start()
    with pytest.raises(ValueError, match="late-1 is flagged"):
        server.add_worker(type("Flagged", (Idle,), {"flagged": True})("late", replicas=2))
    assert [w.name for w in server.workers] == ["idle"] and "late" not in server.replica_counts()
    server.add_worker(Idle("late", replicas=2))  # the name is free: the refused one left nothing behind
    assert [w.name for w in server.workers] == ["idle", "late-1", "late-2"]
    server.stop()
    assert server.join_all(10) == []
