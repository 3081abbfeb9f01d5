"""Worker classes the in-process tests share.

They live in an importable module (not in the test files) so that spawn and
forkserver children can unpickle them. Each records what happens to it on a
multiprocessing queue, so a test reads the same record for thread and process
workers.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import threading
from typing import Any

from spoc import AbstractWorker
from spoc.workers import ProcessWorker, ThreadWorker

Journal = "multiprocessing.Queue[tuple[str, ...]]"


class Recording:
    """Appends ``(name, what)`` to `journal` for every phase and lifecycle event."""

    name: str
    journal: Any
    fail_in: str

    def note(self, *what: str) -> None:
        self.journal.put((self.name, *what))

    def setup(self) -> None:
        self.note("setup")
        if self.fail_in == "setup":
            raise ValueError("setup failed on purpose")

    def main(self) -> None:
        self.note("main")
        if self.fail_in == "main":
            raise KeyError("main failed on purpose")

    def teardown(self) -> None:
        self.note("teardown")
        if self.fail_in == "teardown":
            raise RuntimeError("teardown failed on purpose")

    def lifecycle(self, event_type: str, **data: Any) -> None:
        if event_type == "error":
            self.note("lifecycle", "error", str(data["phase"]), type(data["exception"]).__name__)
        else:
            self.note("lifecycle", event_type)


class RecordingThread(Recording, ThreadWorker):
    def __init__(self, name: str, journal: Any, fail_in: str = "") -> None:
        super().__init__(name)
        self.journal = journal
        self.fail_in = fail_in


class RecordingProcess(Recording, ProcessWorker):
    def __init__(self, name: str, journal: Any, fail_in: str = "", start_method: str | None = None) -> None:
        super().__init__(name, start_method=start_method)
        self.journal = journal
        self.fail_in = fail_in


class AsyncRecording(Recording):
    async def setup(self) -> None:  # type: ignore[override]
        self.loop = asyncio.get_running_loop()
        self.resource = object()
        Recording.setup(self)

    async def main(self) -> None:  # type: ignore[override]
        same = asyncio.get_running_loop() is self.loop
        self.note("main", f"same-loop={same}", type(self.loop).__module__.split(".")[0])
        if self.fail_in == "main":
            raise KeyError("main failed on purpose")

    async def teardown(self) -> None:  # type: ignore[override]
        same = asyncio.get_running_loop() is self.loop and self.resource is not None
        self.note("teardown", f"same-loop={same}")

    async def lifecycle(self, event_type: str, **data: Any) -> None:  # type: ignore[override]
        Recording.lifecycle(self, event_type, **data)


class AsyncRecordingThread(AsyncRecording, ThreadWorker):
    def __init__(self, name: str, journal: Any, fail_in: str = "") -> None:
        super().__init__(name)
        self.journal = journal
        self.fail_in = fail_in


class AsyncRecordingProcess(AsyncRecording, ProcessWorker):
    def __init__(self, name: str, journal: Any, fail_in: str = "", start_method: str | None = None) -> None:
        super().__init__(name, start_method=start_method)
        self.journal = journal
        self.fail_in = fail_in


class WaitsForStop(ThreadWorker):
    """Blocks in self.wait(60); notes the moment stop arrives."""

    def __init__(self, name: str, plugin_options: dict[str, Any] | None = None) -> None:
        super().__init__(name, plugin_options=plugin_options)
        self.ready = threading.Event()

    def main(self) -> None:
        self.ready.set()
        self.woke_by_stop = self.wait(60)


class WaitsForStopProcess(ProcessWorker):
    def __init__(self, name: str, ready: Any, start_method: str | None = None) -> None:
        super().__init__(name, start_method=start_method)
        self.ready = ready

    def main(self) -> None:
        self.ready.set()
        while not self.wait(60):
            pass


class SleepsAsync(ThreadWorker):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ready = threading.Event()

    async def main(self) -> None:
        self.ready.set()
        self.woke_by_stop = await self.sleep(60)


class Raises(ProcessWorker):
    def __init__(self, name: str, start_method: str | None = None) -> None:
        super().__init__(name, start_method=start_method)

    def main(self) -> None:
        raise LookupError("no such job: 42")


class CustomError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


class RaisesUnpicklable(ProcessWorker):
    def main(self) -> None:
        raise CustomError(7, "does not survive pickling")


class KillsItself(ProcessWorker):
    def main(self) -> None:
        os.kill(os.getpid(), 9)


class ReportsLoop(ThreadWorker):
    def __init__(self, name: str, journal: Any) -> None:
        super().__init__(name)
        self.journal = journal

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        self.journal.put((self.name, type(loop).__module__ + "." + type(loop).__name__))


class ReportsLoopProcess(ProcessWorker):
    def __init__(self, name: str, journal: Any, start_method: str | None = None) -> None:
        super().__init__(name, start_method=start_method)
        self.journal = journal

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        self.journal.put((self.name, type(loop).__module__ + "." + type(loop).__name__))


class RunsSubprocess(ThreadWorker):
    """Starts a child of its own and records its real exit code."""

    def __init__(self, name: str, journal: Any) -> None:
        super().__init__(name)
        self.journal = journal

    def main(self) -> None:
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
        self.journal.put((self.name, "popen", str(child.wait())))


class ReportsProcessName(ProcessWorker):
    def __init__(self, name: str, journal: Any, start_method: str | None = None) -> None:
        super().__init__(name, start_method=start_method)
        self.journal = journal

    def main(self) -> None:
        self.journal.put((self.name, multiprocessing.current_process().name))


class ExitsAtOnce(ProcessWorker):
    def main(self) -> None:
        pass


def run_in_server(*workers: Any, timeout: float = 30.0) -> Any:
    """Start `workers` under a fresh Server and join it; assert that every worker stopped in time."""
    from spoc import Server

    server = Server("test")
    for worker in workers:
        server.add_worker(worker)
    server.start()
    assert server.join_all(timeout) == []
    return server


def journal() -> Any:
    """A fresh multiprocessing queue to record into."""
    return multiprocessing.get_context("spawn").Queue()


def drain(queue: Any, count: int, timeout: float = 30.0) -> list[tuple[str, ...]]:
    """Take `count` records from `queue` (raising if they do not all arrive in time)."""
    return [queue.get(timeout=timeout) for _ in range(count)]


class SlowTeardown(ProcessWorker):
    """Signals `stopping` once stop has arrived, then holds teardown until `proceed` is set."""

    def __init__(self, name: str, stopping: Any, proceed: Any, records: Any, start_method: str | None = None) -> None:
        super().__init__(name, start_method=start_method)
        self.stopping = stopping
        self.proceed = proceed
        self.records = records

    def main(self) -> None:
        while not self.wait(60):
            pass
        self.stopping.set()

    def teardown(self) -> None:
        self.proceed.wait(30)
        self.records.put((self.name, "teardown done"))


class SendsRecords(AbstractWorker):
    """Sends a record from each phase; from main also one that cannot travel when it runs in a child."""

    def setup(self) -> None:
        self.send_record("test.phase", phase="setup", pid=os.getpid())

    def main(self) -> None:
        for i in range(3):
            self.send_record("test.phase", phase="main", i=i)
        try:
            self.send_record("test.unpicklable", lock=threading.Lock())
        except TypeError as exc:
            self.send_record("test.refused", message=str(exc))

    def teardown(self) -> None:
        self.send_record("test.phase", phase="teardown")


class SendsRecordsThread(SendsRecords, ThreadWorker):
    pass


class SendsRecordsProcess(SendsRecords, ProcessWorker):
    pass


class StopsItself(ProcessWorker):
    """Calls self.stop() inside its child, then ends."""

    def main(self) -> None:
        self.stop()


class ReportsChildHook(ProcessWorker):
    """Reports in setup what `child_hook_plugin` left in the child's environment."""

    def setup(self) -> None:
        self.send_record("test.env", value=os.environ.get("SPOC_TEST_CHILD_HOOK"))
        if "SPOC_TEST_SERVER_STARTING" in os.environ:
            self.send_record("test.server_starting", value=os.environ["SPOC_TEST_SERVER_STARTING"])

    def main(self) -> None:
        pass


class FailsFirstTime(ProcessWorker):
    """Fails on its first run; a restarted instance (restarts >= 1) runs until stopped."""

    def main(self) -> None:
        if self.restarts == 0:
            raise RuntimeError("first run fails")
        previous = self.previous_exit
        self.send_record(
            "test.running",
            pid=os.getpid(),
            restarts=self.restarts,
            previous=None if previous is None else (previous.outcome, previous.error and previous.error.message),
        )
        while not self.wait(60):
            pass


class FailsFirstTimeHolding(ProcessWorker):
    """Fails on its first run; a restarted instance sets `flag`, a multiprocessing.Event it was built with."""

    def __init__(self, name: str, flag: Any, start_method: str | None = None) -> None:
        super().__init__(name, start_method=start_method)
        self.flag = flag

    def main(self) -> None:
        if self.restarts == 0:
            raise RuntimeError("first run fails")
        self.flag.set()
        while not self.wait(60):
            pass


class FailsFirstTimeThread(ThreadWorker):
    def main(self) -> None:
        if self.restarts == 0:
            raise RuntimeError("first run fails")
        self.send_record("test.running", restarts=self.restarts)
        self.wait()


def _name_of_current() -> str | None:
    import spoc

    worker = spoc.current_worker()
    return None if worker is None else worker.name


class ReportsCurrentWorker:
    """Reports `spoc.current_worker()` from its phases and from a thread it starts itself."""

    name: str
    send_record: Any

    def setup(self) -> None:
        self.send_record("test.current", where="setup", current=_name_of_current())

    def main(self) -> None:
        seen: list[str | None] = []
        helper = threading.Thread(target=lambda: seen.append(_name_of_current()))
        helper.start()
        helper.join()
        self.send_record("test.current", where="main", current=_name_of_current())
        self.send_record("test.current", where="own thread", current=seen[0])

    def teardown(self) -> None:
        self.send_record("test.current", where="teardown", current=_name_of_current())


class ReportsCurrentThread(ReportsCurrentWorker, ThreadWorker):
    pass


class ReportsCurrentProcess(ReportsCurrentWorker, ProcessWorker):
    pass


class ReportsCurrentAsync(ThreadWorker):
    """An async worker: a task it creates sees it too."""

    async def main(self) -> None:
        task = asyncio.get_running_loop().create_task(_current_in_a_task())
        self.send_record("test.current", where="task", current=await task)


async def _current_in_a_task() -> str | None:
    return _name_of_current()


class SlowSetupThread(ThreadWorker):
    """Spends `seconds` in setup, for the duration its startup event carries."""

    def __init__(self, name: str, seconds: float) -> None:
        super().__init__(name)
        self.seconds = seconds

    def setup(self) -> None:
        import time

        time.sleep(self.seconds)

    def main(self) -> None:
        pass


class _HoldsAndFails:
    """Holds a megabyte from its setup on, and fails until its restart number `runs`, which runs until stopped."""

    runs = 100
    restarts: int

    def setup(self) -> None:
        self.payload = bytearray(1 << 20)

    def main(self) -> None:
        if self.restarts < self.runs:
            raise RuntimeError(f"run {self.restarts} fails")
        while not self.wait(60):  # type: ignore[attr-defined]
            pass


class HoldsAndFailsThread(_HoldsAndFails, ThreadWorker):
    pass


class HoldsAndFailsProcess(_HoldsAndFails, ProcessWorker):
    pass


class TearsDownWhenReleased(ProcessWorker):
    """Runs until stopped; its teardown waits for `release`, a multiprocessing.Event (30 s at most)."""

    def __init__(self, name: str, release: Any, start_method: str | None = None) -> None:
        super().__init__(name, start_method=start_method)
        self.release = release

    def main(self) -> None:
        while not self.wait(60):
            pass

    def teardown(self) -> None:
        self.release.wait(30)


class WritesBothStreams(ProcessWorker):
    """Writes a line to stdout through print() and one to fd 2 through os.write, as a C library would.

    (print() to the interpreter's own stdout: pytest's capture replaces sys.stdout by a file of its own.)
    """

    def main(self) -> None:
        print(f"out {self.name} {os.getpid()}", file=sys.__stdout__, flush=True)
        os.write(2, f"err {self.name} {os.getpid()}\n".encode())


class ReportsItsServer(ProcessWorker):
    """Sends the server's name and pid as it reads them where it lives, and what its stash holds there; its
    first run fails (so a supervisor's fresh instance reports too), the next waits to be stopped."""

    def main(self) -> None:
        self.send_record("test.server", name=self.server_name, pid=self.server_pid, stash=len(self.stash))
        if self.restarts == 0:
            raise RuntimeError("first run fails")
        while not self.wait(60):
            pass


class Renewed(AbstractWorker):
    """Runs until stopped; says in a record when main() begins and when its teardown runs."""

    def main(self) -> None:
        self.send_record("test.main", restarts=self.restarts, pid=os.getpid())
        while not self.wait(60):
            pass

    def teardown(self) -> None:
        self.send_record("test.teardown", pid=os.getpid())


class RenewedThread(Renewed, ThreadWorker):
    pass


class RenewedProcess(Renewed, ProcessWorker):
    pass


class Gated(ThreadWorker):
    """Its setup waits for `setup_gate`, its teardown for `teardown_gate` (threading.Events; 30 s at most)."""

    def __init__(
        self, name: str, setup_gate: threading.Event | None = None, teardown_gate: threading.Event | None = None
    ) -> None:
        super().__init__(name)
        self.setup_gate, self.teardown_gate = setup_gate, teardown_gate

    def setup(self) -> None:
        if self.setup_gate is not None:
            self.setup_gate.wait(30)

    def main(self) -> None:
        self.wait()

    def teardown(self) -> None:
        if self.teardown_gate is not None:
            self.teardown_gate.wait(30)


class IgnoresStop(ProcessWorker):
    """Sleeps through a stop request: only the server's deadline ends it."""

    def main(self) -> None:
        import time

        time.sleep(60)
