"""The worker lifecycle: order, failures in every phase, async, on threads and on every start method."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest

from spoc import ErrorRecord, ProcessWorker, Server, ThreadWorker
from spoc.workers import AbstractWorker
from workers_for_tests import (
    AsyncRecordingProcess,
    AsyncRecordingThread,
    RecordingProcess,
    RecordingThread,
    drain,
    journal,
    run_in_server,
)

CLEAN = [
    ("setup",),
    ("lifecycle", "startup"),
    ("main",),
    ("teardown",),
    ("lifecycle", "shutdown"),
]


def make(kind: str, name: str, queue: Any, fail_in: str = "", method: str = "fork") -> AbstractWorker:
    if kind == "thread":
        return RecordingThread(name, queue, fail_in)
    if kind == "async-thread":
        return AsyncRecordingThread(name, queue, fail_in)
    if kind == "async-process":
        return AsyncRecordingProcess(name, queue, fail_in, start_method=method)
    return RecordingProcess(name, queue, fail_in, start_method=method)


def run_alone(worker: AbstractWorker) -> None:
    worker.start()
    worker.join(30)
    assert not worker.is_alive()


@pytest.mark.parametrize("runner", [run_alone, run_in_server], ids=["alone", "server"])
@pytest.mark.parametrize("kind", ["thread", "process"])
def test_events_come_in_lifecycle_order(kind: str, runner: Any) -> None:
    queue = journal()
    worker = make(kind, "w", queue)
    runner(worker)
    assert [entry[1:] for entry in drain(queue, 5)] == CLEAN
    assert worker.exitcode == 0
    assert worker.error is None


def test_every_start_method_runs_the_lifecycle(spoc_start_method: str) -> None:
    queue = journal()
    worker = make("process", "w", queue, method=spoc_start_method)
    run_in_server(worker)
    assert [entry[1:] for entry in drain(queue, 5)] == CLEAN
    assert worker.exitcode == 0


EXPECTED_ON_FAILURE = {
    "setup": [
        ("setup",),
        ("lifecycle", "error", "setup", "ValueError"),
        ("teardown",),
        ("lifecycle", "shutdown"),
    ],
    "main": [
        ("setup",),
        ("lifecycle", "startup"),
        ("main",),
        ("lifecycle", "error", "main", "KeyError"),
        ("teardown",),
        ("lifecycle", "shutdown"),
    ],
    "teardown": [
        ("setup",),
        ("lifecycle", "startup"),
        ("main",),
        ("teardown",),
        ("lifecycle", "error", "teardown", "RuntimeError"),
        ("lifecycle", "shutdown"),
    ],
}


@pytest.mark.parametrize("phase", ["setup", "main", "teardown"])
@pytest.mark.parametrize("kind", ["thread", "process"])
def test_teardown_runs_and_error_is_reported_whatever_phase_fails(kind: str, phase: str) -> None:
    queue = journal()
    worker = make(kind, "w", queue, fail_in=phase)
    run_in_server(worker)
    expected = EXPECTED_ON_FAILURE[phase]
    assert [entry[1:] for entry in drain(queue, len(expected))] == expected
    assert worker.exitcode == 1
    assert worker.error is not None
    assert worker.error.phase == phase
    assert worker.exit_info is not None and worker.exit_info.outcome == "failed"


@pytest.mark.parametrize("kind", ["async-thread", "async-process"])
@pytest.mark.parametrize("fail_in", ["", "setup", "main"])
def test_async_worker_lives_in_one_loop_and_always_tears_down(kind: str, fail_in: str) -> None:
    queue = journal()
    worker = make(kind, "w", queue, fail_in=fail_in)
    run_in_server(worker)
    records = [entry[1:] for entry in drain(queue, {"": 5, "setup": 4, "main": 6}[fail_in])]
    assert ("teardown", "same-loop=True") in records
    if fail_in != "setup":
        assert any(r[0] == "main" and r[1] == "same-loop=True" for r in records)
    assert worker.exitcode == (1 if fail_in else 0)


def test_subclass_without_main_is_a_clear_type_error() -> None:
    class NoMain(ThreadWorker):
        pass

    with pytest.raises(TypeError, match=r"NoMain .*does not define main\(\)"):
        NoMain("x")


def test_name_is_positional_and_required() -> None:
    class W(ThreadWorker):
        def main(self) -> None:
            pass

    assert W("a").name == "a"
    assert W(name="b").name == "b"
    with pytest.raises(TypeError, match="non-empty str"):
        W("")


def test_exitcode_is_none_until_the_worker_ends() -> None:
    queue = journal()
    worker = make("thread", "w", queue)
    assert worker.exitcode is None
    run_alone(worker)
    assert worker.exitcode == 0


def test_a_worker_starts_once() -> None:
    worker = make("thread", "w", journal())
    run_alone(worker)
    with pytest.raises(RuntimeError, match="already started"):
        worker.start()


def test_fresh_instance_is_built_from_the_same_arguments() -> None:
    queue = journal()
    worker = make("thread", "w", queue, fail_in="main")
    run_alone(worker)
    fresh = worker.fresh_instance()
    assert isinstance(fresh, RecordingThread)
    assert (fresh.name, fresh.fail_in, fresh.started, fresh.error) == ("w", "main", False, None)
    drain(queue, 6)


def test_error_record_keeps_the_facts_and_the_exception() -> None:
    try:
        raise ValueError("bad value")
    except ValueError as exc:
        record = ErrorRecord.from_exception(exc, "main")
    assert record.type_name == "ValueError"
    assert record.message == "bad value"
    assert "raise ValueError" in record.traceback
    assert isinstance(record.exception, ValueError)
    assert pickle.loads(pickle.dumps(record)).message == "bad value"


def test_context_is_a_namespace_for_the_worker() -> None:
    class W(ThreadWorker):
        def setup(self) -> None:
            self.context.count = 1

        def main(self) -> None:
            self.context.count += 1

    worker = W("w")
    run_alone(worker)
    assert worker.context.count == 2


def test_same_names_import_from_spoc_and_spoc_workers() -> None:
    import spoc
    import spoc.workers

    for name in (
        "AbstractWorker",
        "ThreadWorker",
        "ProcessWorker",
        "Server",
        "run_async_safely",
        "set_uvloop_if_available",
    ):
        assert getattr(spoc.workers, name) is getattr(spoc, name)
    assert sorted(spoc.__all__) == spoc.__all__ or set(spoc.__all__) >= set(spoc.workers.__all__)


def test_process_worker_rejects_an_unknown_start_method() -> None:
    class P(ProcessWorker):
        def main(self) -> None:
            pass

    with pytest.raises(ValueError, match=r"P 'p': start_method 'teleport' is not available"):
        P("p", start_method="teleport")


def test_run_async_safely_runs_or_schedules() -> None:
    from spoc import run_async_safely

    async def answer() -> int:
        return 42

    assert run_async_safely(answer()) == 42

    async def inside() -> int:
        task = run_async_safely(answer())
        assert isinstance(task, asyncio.Task)
        return await task

    assert run_async_safely(inside()) == 42


class ForgetsSuper(ThreadWorker):
    def __init__(self, name: str, url: str) -> None:  # no super().__init__(name): the mistake
        self.url = url

    def main(self) -> None:
        pass


def test_a_worker_whose_init_skips_super_init_is_told_what_is_missing_and_where() -> None:
    worker = ForgetsSuper("fetcher", "http://example.invalid")
    server = Server("s")
    with pytest.raises(
        TypeError, match=r"ForgetsSuper\.__init__ \(.*test_lifecycle\.py, line \d+\) does not call super"
    ):
        server.add_worker(worker)
    with pytest.raises(TypeError, match=r"does not call super\(\)\.__init__\(name\): the worker has no name"):
        worker.start()
    assert worker.url == "http://example.invalid"
