"""One test per hook (the meta-test in test_docs.py holds every hook to it), written with spoc.testing's fixtures."""

from __future__ import annotations

import logging
import os
import signal
import threading
import traceback
from typing import Any

import pytest

import child_hook_plugin
from capturing import CapturesOutput
from spoc import AbstractWorker, PluginError, Server, SpocError, Stash, StashKey, WorkerExit, hookimpl
from spoc.testing import HookRecorder, ServerFactory
from workers_for_tests import (
    ExitsAtOnce,
    KillsItself,
    Raises,
    RenewedProcess,
    ReportsChildHook,
    ReportsItsServer,
    SendsRecordsProcess,
    SendsRecordsThread,
    StopsItself,
    WaitsForStop,
    WritesBothStreams,
)

# ---------------------------------------------------------------------- backends and checks


class RefusesTooBusy:
    """Refuses workers whose `busy` setting (class attribute or plugin option) is above 3."""

    name = "refuses-too-busy"

    @hookimpl
    def worker_check(self, worker: Any) -> None:
        busy = worker.plugin_options.get("busy", 0)
        if busy > 3:
            raise ValueError(f"worker {worker.name!r}: busy={busy!r} is above 3; give 3 or less")


class RefusesItsOwnSetting:
    """A plugin whose own setting (an environment variable, say) cannot be used."""

    name = "refuses-its-setting"

    @hookimpl
    def server_check(self, server: Server) -> None:
        raise ValueError(f"SPOC_TEST_LIMIT must be a number, got 'many' (server {server.name!r})")


def test_hook_server_check(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    """It runs once before any worker is checked; what it raises propagates, naming the plugin; nothing starts."""
    worker = WaitsForStop("w")
    server = spoc_server(worker, plugins=[RefusesItsOwnSetting()], name="checked")
    with pytest.raises(
        ValueError, match=r"SPOC_TEST_LIMIT must be a number, got 'many' \(server 'checked'\)"
    ) as raised:
        server.start()
    assert "(raised by spoc plugin 'refuses-its-setting' in its server_check hook)" in raised.value.__notes__
    assert spoc_hooks.names() == ["backend_register", "server_check", "server_start_failed"]
    assert not worker.started


def test_hook_server_start_failed(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    """It hears of the error start() raises next, a refusal or a backend nobody registered; nothing follows it."""
    refused = spoc_server(WaitsForStop("busy", plugin_options={"busy": 9}), plugins=[RefusesTooBusy()], name="refused")
    with pytest.raises(ValueError) as raised:
        refused.start()
    (call,) = spoc_hooks.of("server_start_failed", server="refused")
    assert call["error"] is raised.value
    assert [c.hook for c in spoc_hooks.calls if c.server == "refused"][-1] == "server_start_failed"

    unknown = spoc_server(WaitsForStop("odd", plugin_options={"backend": "nowhere"}), name="unknown")
    with pytest.raises(SpocError, match="nowhere") as raised_too:
        unknown.start()
    assert spoc_hooks.of("server_start_failed", server="unknown")[0]["error"] is raised_too.value

    fine = spoc_server(WaitsForStop("fine"), name="fine")
    fine.start()
    assert not spoc_hooks.of("server_start_failed", server="fine")


def test_hook_worker_check(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    """It sees every worker before any starts; what it raises propagates, naming the plugin, and nothing starts."""
    fine = WaitsForStop("fine")
    server = spoc_server(fine, WaitsForStop("busy", plugin_options={"busy": 9}), plugins=[RefusesTooBusy()])
    with pytest.raises(ValueError, match=r"worker 'busy': busy=9 is above 3") as raised:
        server.start()
    assert "(raised by spoc plugin 'refuses-too-busy' in its worker_check hook)" in raised.value.__notes__
    assert [c.worker for c in spoc_hooks.of("worker_check")] == ["fine", "busy"]
    assert not fine.started and not spoc_hooks.of("server_starting")

    running = spoc_server(WaitsForStop("first"), plugins=[RefusesTooBusy()], name="running")
    running.start()
    with pytest.raises(ValueError, match="busy=4"):
        running.add_worker(WaitsForStop("late", plugin_options={"busy": 4}))
    assert [w.name for w in running.workers] == ["first"]
    running.add_worker(WaitsForStop("ok", plugin_options={"busy": 3}))
    assert [c.worker for c in spoc_hooks.of("worker_check", server="running")] == ["first", "late", "ok"]


@pytest.mark.parametrize("entry", ["start", "run_forever", "add_worker"])
def test_a_refusal_is_raised_from_the_users_call_without_the_frames_below(
    spoc_server: ServerFactory, entry: str
) -> None:
    """The message names worker, setting, value and plugin: the user's traceback keeps one frame of spoc's."""
    busy = WaitsForStop("busy", plugin_options={"busy": 9})
    server = spoc_server(WaitsForStop("fine"), plugins=[RefusesTooBusy()])
    with pytest.raises(ValueError, match="busy=9 is above 3") as raised:
        if entry == "add_worker":
            server.start()
            server.add_worker(busy)
        else:
            server.add_worker(busy)
            getattr(server, entry)()
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert frames == ["test_a_refusal_is_raised_from_the_users_call_without_the_frames_below", "trimmed"]


# ---------------------------------------------------------------------- the server


class SetsEnvironment:
    name = "sets-environment"

    @hookimpl
    def server_starting(self, server: Server) -> None:
        os.environ["SPOC_TEST_SERVER_STARTING"] = server.name


@pytest.mark.parametrize("start_method", ["fork", "spawn"])  # forkserver children come from an older process
def test_hook_server_starting(spoc_server: ServerFactory, spoc_hooks: HookRecorder, start_method: str) -> None:
    """It runs before any worker starts: a process worker started after it inherits what it set up."""
    worker = ReportsChildHook("child", start_method=start_method)
    server = spoc_server(worker, plugins=[SetsEnvironment(), child_hook_plugin], name="starting")
    try:
        server.start()
        spoc_hooks.wait_for("worker_exited", worker="child")
    finally:
        os.environ.pop("SPOC_TEST_SERVER_STARTING", None)
    (inherited,) = spoc_hooks.of("worker_record", topic="test.server_starting")
    assert inherited["data"] == {"value": "starting"}
    names = spoc_hooks.names()
    assert names[:4] == ["backend_register", "server_check", "worker_check", "server_starting"]
    assert names.index("server_starting") < names.index("worker_event")


def test_hook_server_started(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    thread, process = WaitsForStop("thread"), ExitsAtOnce("process")
    server = spoc_server(thread, process)
    server.start()
    call = spoc_hooks.wait_for("server_started")
    assert thread.started and process.started  # every worker was launched before it
    assert call.server == "test" and spoc_hooks.of("server_started") == [call]


@pytest.mark.signals
@pytest.mark.timeout(60)
def test_hook_server_reloading(app_factory: Any) -> None:
    """SIGHUP to a real run_forever(): the hook names the running workers, before the first of them is stopped."""
    app = app_factory("basic")
    app.expect(r"READY", count=3)
    app.signal(signal.SIGHUP)
    app.expect("RELOADING thread-1,process-1,async-1")
    app.expect(r"READY", count=6)
    lines = app.stdout.splitlines()
    assert lines.index("RELOADING thread-1,process-1,async-1") < min(
        i for i, line in enumerate(lines) if line.startswith("TEARDOWN")
    )
    app.signal(signal.SIGTERM)
    assert app.wait() == 0


def test_hook_server_stopping(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    stopped = spoc_server(WaitsForStop("w"), name="stopped")
    stopped.start()
    stopped.stop()
    stopped.stop()
    assert stopped.join_all(10) == []
    ended = spoc_server(ExitsAtOnce("quick"), name="ended")
    assert ended.run_forever().reason == "workers_ended"
    assert [(c.server, c["reason"]) for c in spoc_hooks.of("server_stopping")] == [
        ("stopped", "stop"),
        ("ended", "workers_ended"),
    ]
    names = spoc_hooks.names(worker=None)
    stopping = names.index("server_stopping")
    assert "worker_stopping" in names[stopping:] and "worker_stopping" not in names[:stopping]


def test_hook_server_stopped(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    server = spoc_server(WaitsForStop("first"), ExitsAtOnce("second"), Raises("third"), allow_errors=True)
    server.start()
    for name in ("second", "third"):  # each ended by itself, before the stop below
        spoc_hooks.wait_for("worker_exited", worker=name)
    server.stop()
    assert server.join_all(10) == []
    server.join_all(1)  # once only
    (call,) = spoc_hooks.of("server_stopped")
    assert [(e.worker, e.outcome) for e in call["exits"]] == [
        ("first", "stopped"),
        ("second", "clean"),
        ("third", "failed"),
    ]
    assert spoc_hooks.names()[-1] == "server_stopped"


# ---------------------------------------------------------------------- workers


def test_hook_worker_event(spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str) -> None:
    """Every event, thread and process alike, in the order the worker sent it."""
    server = spoc_server(SendsRecordsThread("thread"), SendsRecordsProcess("process", start_method=spoc_start_method))
    server.start()
    for name in ("thread", "process"):
        spoc_hooks.wait_for("worker_exited", worker=name)
    for name in ("thread", "process"):
        events = [c["event"] for c in spoc_hooks.of("worker_event", worker=name)]
        kinds = [e.kind if e.kind != "record" else e.data["topic"] for e in events]
        assert kinds[:7] == [
            "test.phase",
            "startup",
            "test.phase",
            "test.phase",
            "test.phase",
            "test.refused" if name == "process" else "test.unpicklable",
            "test.phase",
        ]
        assert kinds[7:] in (["shutdown", "exit"], ["shutdown"])  # a process's end comes from its sentinel
        assert [e.monotonic for e in events] == sorted(e.monotonic for e in events)
        assert {e.worker for e in events} == {name}


def test_hook_worker_started(spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str) -> None:
    process = ExitsAtOnce("process", start_method=spoc_start_method)
    server = spoc_server(WaitsForStop("thread"), process)
    server.start()
    thread_call = spoc_hooks.wait_for("worker_started", worker="thread")
    process_call = spoc_hooks.wait_for("worker_started", worker="process")
    assert thread_call["event"].pid == os.getpid()
    assert process_call["event"].pid == process.pid != os.getpid()
    assert process_call["event"].kind == "startup"


def test_hook_worker_error(spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str) -> None:
    server = spoc_server(Raises("broken", start_method=spoc_start_method), allow_errors=True)
    server.start()
    error = spoc_hooks.wait_for("worker_error", worker="broken")["error"]
    assert (error.phase, error.type_name) == ("main", "LookupError")
    assert "no such job: 42" in error.traceback and "raise LookupError" in error.traceback
    assert isinstance(error.exception, LookupError)
    assert spoc_hooks.wait_for("worker_exited", worker="broken")["exit_info"].outcome == "failed"


def test_hook_worker_record(spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str) -> None:
    process = SendsRecordsProcess("process", start_method=spoc_start_method)
    server = spoc_server(SendsRecordsThread("thread"), process)
    server.start()
    for name in ("thread", "process"):
        spoc_hooks.wait_for("worker_exited", worker=name)
    for name in ("thread", "process"):
        names = spoc_hooks.names(worker=name)
        records = [c for c in spoc_hooks.of("worker_record", worker=name) if c["topic"] == "test.phase"]
        assert [(c["data"]["phase"], c["data"].get("i")) for c in records] == [
            ("setup", None),
            ("main", 0),
            ("main", 1),
            ("main", 2),
            ("teardown", None),
        ]
        assert names.index("worker_started") < names.index("worker_record", names.index("worker_record") + 1)
        assert names[-1] == "worker_exited"
    assert spoc_hooks.of("worker_record", worker="process", topic="test.phase")[0]["data"]["pid"] == process.pid
    # A thread worker's record is handed over as is; a process worker's must pickle, and says so when it does not.
    assert "lock" in spoc_hooks.of("worker_record", worker="thread", topic="test.unpicklable")[0]["data"]
    (refused,) = spoc_hooks.of("worker_record", worker="process", topic="test.refused")
    assert "send_record('test.unpicklable') cannot send its data" in refused["data"]["message"]


def test_send_record_outside_the_workers_life_is_an_error() -> None:
    worker = WaitsForStop("idle")
    with pytest.raises(SpocError, match=r"'idle': send_record\('x'\) works only while the worker's body runs"):
        worker.send_record("x")
    with pytest.raises(TypeError, match="non-empty str topic"):
        worker.send_record("")


def test_hook_worker_stopping(spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str) -> None:
    """Once per worker that was still running: asked by the server, or stopping itself inside its child."""
    server = spoc_server(
        WaitsForStop("waits"), StopsItself("itself", start_method=spoc_start_method), ExitsAtOnce("gone")
    )
    server.start()
    spoc_hooks.wait_for("worker_exited", worker="itself")
    spoc_hooks.wait_for("worker_exited", worker="gone")
    server.stop()
    assert server.join_all(10) == []
    assert sorted(c.worker or "" for c in spoc_hooks.of("worker_stopping")) == ["itself", "waits"]
    assert spoc_hooks.of("worker_exited", worker="itself")[0]["exit_info"].outcome == "stopped"


def test_hook_worker_recycling(spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str) -> None:
    """Once per recycle, with its reason, on the thread that called recycle_worker, before the worker's stop."""
    waits = RenewedProcess("renewed", start_method=spoc_start_method)
    server = spoc_server(waits)
    server.start()
    spoc_hooks.wait_for("worker_started", worker="renewed")
    assert server.recycle_worker(waits, "memory")
    (call,) = spoc_hooks.of("worker_recycling")  # already: called on this thread
    assert call["reason"] == "memory" and call["worker"] is waits
    spoc_hooks.wait_for("worker_started", worker=lambda w: w.name == "renewed" and w is not waits)
    names = spoc_hooks.names("renewed")
    assert names.index("worker_recycling") < names.index("worker_stopping") < names.index("worker_exited")
    assert len(spoc_hooks.of("worker_recycling")) == 1


def test_hook_worker_exited(spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str) -> None:
    workers = (
        WaitsForStop("stopped"),
        ExitsAtOnce("clean", start_method=spoc_start_method),
        Raises("failed", start_method=spoc_start_method),
        KillsItself("killed", start_method=spoc_start_method),
    )
    server = spoc_server(*workers, allow_errors=True)
    server.start()
    for name in ("clean", "failed", "killed"):
        spoc_hooks.wait_for("worker_exited", worker=name)
    server.stop()
    assert server.join_all(10) == []
    exits = {c.worker: c["exit_info"] for c in spoc_hooks.of("worker_exited")}
    assert {name: info.outcome for name, info in exits.items()} == {n: n for n in exits}
    assert exits["killed"].exitcode == -9 and exits["failed"].error is not None
    assert exits["stopped"].stop_requested and not exits["clean"].stop_requested


def test_hook_worker_stdio(spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str) -> None:
    """The child writes to the plugin's pipes, under every start method and after a restart (the fork server's
    children); the server closes its copies of the write ends, so the pipes are at their end once it has ended."""
    capture = CapturesOutput()
    server = spoc_server(WritesBothStreams("writer", start_method=spoc_start_method), plugins=[capture])
    server.start()
    first = spoc_hooks.wait_for("worker_started", worker="writer")["event"].pid
    spoc_hooks.wait_for("worker_exited", worker="writer")
    fresh = server.restart_worker(server.workers[0])
    assert fresh is not None
    second = spoc_hooks.wait_for("worker_started", worker=lambda w: w.restarts == 1)["event"].pid
    spoc_hooks.wait_for("worker_exited", worker=lambda w: w.restarts == 1)
    server.stop()
    assert server.join_all(10) == []
    assert capture.output[1].decode().splitlines() == [f"out writer {first}", f"out writer {second}"]
    assert capture.output[2].decode().splitlines() == [f"err writer {first}", f"err writer {second}"]
    assert capture.at_end == [True] * 4


class GivesPipes:
    """Gives the child the write ends of new pipes for `numbers` (or returns `result` as it is)."""

    def __init__(self, name: str, numbers: tuple[int, ...] = (), result: object = None) -> None:
        self.name = name
        self.numbers = numbers
        self.result = result
        self.read_ends: dict[int, int] = {}

    @hookimpl
    def worker_stdio(self) -> object:
        if not self.numbers:
            return self.result
        given = {}
        for number in self.numbers:
            self.read_ends[number], given[number] = os.pipe()
        return given


def test_worker_stdio_the_first_plugin_has_a_number_and_a_wrong_result_is_named(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = GivesPipes("first", (1,)), GivesPipes("second", (1, 2))
    wrong = GivesPipes("wrong", result={3: 1})
    server = spoc_server(WritesBothStreams("writer"), plugins=[first, second, wrong])
    server.start()
    spoc_hooks.wait_for("worker_exited", worker="writer")
    server.stop()
    assert server.join_all(10) == []
    assert os.read(first.read_ends[1], 1024).startswith(b"out writer")
    assert os.read(second.read_ends[1], 1024) == b""  # closed by the server, never given to the child
    assert os.read(second.read_ends[2], 1024).startswith(b"err writer")
    for fd in (*first.read_ends.values(), *second.read_ends.values()):
        os.close(fd)
    messages = [r.getMessage() for r in caplog.records]
    assert "spoc plugin 'wrong': worker_stdio returned {3: 1} for worker 'writer'" in "\n".join(messages)
    assert any("spoc plugins 'first' and 'second' both give its fd 1" in m for m in messages)


# ---------------------------------------------------------------------- in the child


def test_hook_child_starting(spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str) -> None:
    """It runs in the child before setup, under every start method; a module plugin travels by its name."""
    worker = ReportsChildHook("child", start_method=spoc_start_method)
    server = spoc_server(worker, plugins=[child_hook_plugin], name="parent")
    server.start()
    spoc_hooks.wait_for("worker_exited", worker="child")
    topics = [c["topic"] for c in spoc_hooks.of("worker_record", worker="child")]
    assert topics == ["test.child_starting", "test.env", "test.child_stopping"]
    hook_record = spoc_hooks.of("worker_record", topic="test.child_starting")[0]["data"]
    assert hook_record == {"pid": worker.pid, "server": "parent", "server_pid": os.getpid()}  # the server's pid
    assert spoc_hooks.of("worker_record", topic="test.env")[0]["data"] == {"value": "parent/child"}
    assert "SPOC_TEST_CHILD_HOOK" not in os.environ  # it ran in the child, not here
    assert not spoc_hooks.of("child_starting")  # and never in the server's process


def test_hook_child_event(spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str) -> None:
    """It runs in the child right before each lifecycle event is sent (not before records, its own included)."""
    clean, failed = (
        ExitsAtOnce("clean", start_method=spoc_start_method),
        Raises("failed", start_method=spoc_start_method),
    )
    server = spoc_server(clean, failed, plugins=[child_hook_plugin.AnnouncesEvents()], allow_errors=True)
    server.start()
    for worker in (clean, failed):
        spoc_hooks.wait_for("worker_exited", worker=worker.name)
        events = [c["event"] for c in spoc_hooks.of("worker_event", worker=worker.name)]
        kinds = [e.kind if e.kind != "record" else f"announced {e.data['fields']['kind']}" for e in events]
        if worker is clean:
            expected = ["announced startup", "startup", "announced shutdown", "shutdown"]
        else:
            expected = ["announced startup", "startup", "announced error", "error", "announced shutdown", "shutdown"]
        assert kinds[: len(expected)] == expected and kinds[len(expected) :] in ([], ["exit"])
        for call in spoc_hooks.of("worker_record", worker=worker.name):
            assert call["data"]["pid"] == worker.pid and call["data"]["same"]
    assert not spoc_hooks.of("child_event")  # never in the server's process


def test_hook_child_stopping(spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str) -> None:
    """It runs in the child after teardown, however the body ended, and its records arrive before the exit."""
    clean, failed = (
        ExitsAtOnce("clean", start_method=spoc_start_method),
        Raises("failed", start_method=spoc_start_method),
    )
    plugins = [child_hook_plugin, child_hook_plugin.OnlyStopping()]
    server = spoc_server(clean, failed, plugins=plugins, name="parent", allow_errors=True)
    server.start()
    for worker in (clean, failed):
        spoc_hooks.wait_for("worker_exited", worker=worker.name)
        events = [c["event"] for c in spoc_hooks.of("worker_event", worker=worker.name)]
        kinds = [e.kind if e.kind != "record" else e.data["topic"] for e in events]
        after_teardown = kinds[kinds.index("shutdown") + 1 :]
        assert sorted(after_teardown[:2]) == ["test.child_stopping", "test.only_stopping"]
        assert after_teardown[2:] in ([], ["exit"])
        data = spoc_hooks.of("worker_record", worker=worker.name, topic="test.child_stopping")[0]["data"]
        assert data == {
            "pid": worker.pid,
            "server": "parent",
            "server_pid": os.getpid(),
            "phase": None,
            "current": worker.name,
        }
    assert not spoc_hooks.of("child_stopping")  # never in the server's process


@pytest.mark.parametrize("with_wrapper", [False, True])
def test_child_hooks_run_in_pluggys_order(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, with_wrapper: bool
) -> None:
    """tryfirst, then the newest registered, then trylast; a hook wrapper among them works as in pluggy."""
    plugins: list[object] = [
        child_hook_plugin.LastOrdered("last"),
        child_hook_plugin.PlainOrdered("older"),
        child_hook_plugin.PlainOrdered("newer"),
        child_hook_plugin.FirstOrdered("first"),
    ]
    if with_wrapper:
        plugins.append(child_hook_plugin.WrappingOrdered("wrapper"))
    spoc_server(ExitsAtOnce("ordered", start_method="spawn"), plugins=plugins).start()
    spoc_hooks.wait_for("worker_exited", worker="ordered")
    order = [c["data"]["plugin"] for c in spoc_hooks.of("worker_record", topic="test.order")]
    assert order == [*(["wrapper"] if with_wrapper else []), "first", "newer", "older", "last"]


def test_a_raising_child_hook_is_logged_in_the_child_and_the_worker_starts(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, capfd: pytest.CaptureFixture[str]
) -> None:
    server = spoc_server(ExitsAtOnce("survivor", start_method="spawn"), plugins=[child_hook_plugin.RaisesInChild()])
    server.start()
    assert spoc_hooks.wait_for("worker_exited", worker="survivor")["exit_info"].outcome == "clean"
    stderr = capfd.readouterr().err
    assert "spoc plugin 'raises-in-child' raised in hook 'child_starting'" in stderr
    assert "plugin bug in the child of survivor" in stderr


class Unpicklable:
    name = "unpicklable"

    def __init__(self) -> None:
        self.lock = threading.Lock()

    @hookimpl
    def child_starting(self) -> None:
        pass


def test_a_child_hook_plugin_that_cannot_travel_fails_the_start_naming_it(caplog: Any) -> None:
    server = Server(plugins=[Unpicklable()])
    server.add_worker(ExitsAtOnce("never"))
    with caplog.at_level(logging.ERROR), pytest.raises(PluginError) as failure:
        server.start()
    message = str(failure.value)
    assert "'unpicklable' implements child_starting" in message and "cannot be sent there" in message
    assert not server.workers[0].started


# ---------------------------------------------------------------------- joining, and what plugins keep


class KeepsPerWorker:
    """Keeps a count per worker in its stash and one per server in the server's; restarts a failed worker once."""

    name = "keeps-per-worker"
    SEEN = StashKey[int]()
    JOINED = StashKey[list[str]]()

    @hookimpl
    def worker_joined(self, server: Server, worker: AbstractWorker) -> None:
        assert self.SEEN not in worker.stash  # a fresh instance starts with an empty stash
        worker.stash[self.SEEN] = 0
        server.stash.setdefault(self.JOINED, []).append(f"{worker.name}#{worker.restarts}")

    @hookimpl
    def worker_record(self, worker: AbstractWorker) -> None:
        worker.stash[self.SEEN] += 1

    @hookimpl
    def worker_exited(self, server: Server, worker: AbstractWorker, exit_info: WorkerExit) -> None:
        if exit_info.outcome == "failed" and worker.restarts == 0:
            server.restart_worker(worker)


class BreaksOnJoin:
    name = "breaks-on-join"

    @hookimpl
    def worker_joined(self, worker: AbstractWorker) -> None:
        raise RuntimeError(f"a bug in a plugin, joining {worker.name}")


def test_hook_worker_joined(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Every worker joins once its checks passed, after server_starting, before it starts; so do workers added
    later and a restart's fresh instance; a plugin that raises in it refuses nothing."""
    keeper = KeepsPerWorker()
    server = spoc_server(
        WaitsForStop("a"), ReportsItsServer("fails-once"), plugins=[keeper, BreaksOnJoin()], name="joins"
    )
    server.start()
    names = [
        (c.hook, c.worker) for c in spoc_hooks.calls if c.hook in ("worker_check", "server_starting", "worker_joined")
    ]
    assert names[:5] == [
        ("worker_check", "a"),
        ("worker_check", "fails-once"),
        ("server_starting", None),
        ("worker_joined", "a"),
        ("worker_joined", "fails-once"),
    ]
    server.add_worker(WaitsForStop("late"))
    spoc_hooks.wait_for("worker_started", worker="late")
    spoc_hooks.wait_for("worker_record", topic="test.server", worker=lambda w: w.name == "fails-once" and w.restarts)
    joined = [c for c in spoc_hooks.of("worker_joined") if c.worker == "fails-once"]
    assert [c["worker"].restarts for c in joined] == [0, 1]
    assert joined[1]["worker"] is server.workers[1]
    joined_here = server.stash[KeepsPerWorker.JOINED]  # the restart may come before or after "late" was added
    assert joined_here[:2] == ["a#0", "fails-once#0"] and sorted(joined_here[2:]) == ["fails-once#1", "late#0"]
    assert server.workers[1].stash[KeepsPerWorker.SEEN] == 1  # the fresh instance's own count
    assert all(w.started for w in server.workers)  # the plugin that raised refused nothing
    assert caplog.text.count("spoc plugin 'breaks-on-join' raised in hook 'worker_joined'") == 4


def test_a_worker_knows_its_server_where_it_lives(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, spoc_start_method: str
) -> None:
    """server_name and server_pid are set by the server, and read the same in a child, a fresh instance's (from
    the fork server under fork) included; the stash stays in the server."""
    keeper = KeepsPerWorker()
    worker = ReportsItsServer("knows", start_method=spoc_start_method)
    assert (worker.server_name, worker.server_pid) == (None, None)
    server = spoc_server(worker, plugins=[keeper], name="home")
    assert (worker.server_name, worker.server_pid) == ("home", os.getpid())
    server.start()
    reports = [
        spoc_hooks.wait_for("worker_record", topic="test.server", worker=lambda w, n=n: w.restarts == n) for n in (0, 1)
    ]
    assert [call["data"] for call in reports] == [{"name": "home", "pid": os.getpid(), "stash": 0}] * 2
    assert server.workers[0] is not worker and server.workers[0].server_name == "home"


def test_a_stash_maps_keys_to_values() -> None:
    count, names = StashKey[int](), StashKey[list[str]]()
    stash = Stash()
    assert count not in stash and stash.get(count, None) is None and len(stash) == 0
    stash[count] = 1
    assert stash[count] == 1 and stash.setdefault(count, 5) == 1
    assert stash.setdefault(names, []) == [] and len(stash) == 2
    del stash[count]
    with pytest.raises(KeyError):
        stash[count]
    assert repr(stash) == "<Stash of 1 value>"
    with pytest.raises(AttributeError):
        WaitsForStop("w").stash = Stash()  # type: ignore[misc]
