"""Fault-injection app: one program, many failure scenarios, chosen by argv.

    python tests/apps/faults.py SCENARIO [--method fork|forkserver|spawn] [--timeout S] [--from-thread]

Workers print markers the tests wait for: ``READY <name> pid=<pid>`` once
started, ``TEARDOWN <name>`` from teardown. At the end the program prints
``RESULT ...`` and exits with the ServerExit's exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from spoc import hookimpl
from spoc.workers import ProcessWorker, Server, ThreadWorker


def say(*parts: object) -> None:
    """Write one marker line with a single write(), so lines of several processes never interleave."""
    os.write(1, (" ".join(map(str, parts)) + "\n").encode())


class Marked:
    """Markers shared by every worker of this app."""

    name: str

    def lifecycle(self, event_type: str, **data: object) -> None:
        if event_type == "startup":
            say(f"READY {self.name} pid={os.getpid()}")
        elif event_type == "error":
            say(f"ERROR {self.name} phase={data.get('phase')}")

    def teardown(self) -> None:
        say(f"TEARDOWN {self.name}")


class Idle(Marked, ThreadWorker):
    def main(self) -> None:
        while not self.wait(60):
            pass


class IdleProcess(Marked, ProcessWorker):
    def main(self) -> None:
        while not self.wait(60):
            pass


class IdleAsync(Marked, ThreadWorker):
    async def main(self) -> None:
        while not await self.sleep(60):
            pass


async def fails_unawaited() -> None:
    raise ValueError("nobody awaits this task")


class LosesATask(Marked):
    """Creates a task that fails, drops it unawaited, and has it collected."""

    async def main(self) -> None:
        task = asyncio.get_running_loop().create_task(fails_unawaited())
        while not task.done():
            await asyncio.sleep(0)
        del task
        gc.collect()  # asyncio reports the lost exception when the task is collected
        say(f"LOST-TASK {self.name}")
        while not await self.sleep(60):  # type: ignore[attr-defined]
            pass


class LosesATaskThread(LosesATask, ThreadWorker):
    pass


class LosesATaskProcess(LosesATask, ProcessWorker):
    pass


class SetupRaises(Marked, ProcessWorker):
    def setup(self) -> None:
        raise RuntimeError("setup exploded")

    def main(self) -> None:
        say("MAIN-RAN")


def stuck_in_this_function(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.01)


class IgnoresStop(Marked, ProcessWorker):
    """Ignores stop requests and SIGTERM: only SIGKILL ends it."""

    def setup(self) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def main(self) -> None:
        stuck_in_this_function(3600)


class SleepsInMain(Marked, ProcessWorker):
    """In ``time.sleep()`` in main(), as a worker whose job does not look at its stop request: a SIGTERM asks
    it to stop, and only a second one (or the deadline's) ends it."""

    def main(self) -> None:
        stuck_in_this_function(3600)


class ClosesFds(Marked, ProcessWorker):
    """Closes every fd it inherited but stdio (``os.closerange()``, as daemon-style libraries do), then opens a
    file of its own ($USER_FILE, which takes a number spoc's pipes had) and goes on as $AFTER_CLOSING says:
    ``wait`` (self.wait()), ``sleep`` (time.sleep() while is_running), ``return`` or ``raise``."""

    def main(self) -> None:
        os.closerange(3, 65536)
        self.own_file = open(os.environ["USER_FILE"], "wb")  # noqa: SIM115 (open while the worker runs)
        say(f"CLOSED {self.name} own_fd={self.own_file.fileno()}")
        after = os.environ.get("AFTER_CLOSING", "wait")
        if after == "raise":
            raise ValueError("failed after closing its fds")
        while after != "return" and self.is_running:
            if after == "wait":
                self.wait(60)
            else:
                time.sleep(0.01)

    def teardown(self) -> None:
        self.own_file.close()
        super().teardown()


class FailsOnceProcess(Marked, ProcessWorker):
    """Fails at once on its first run; a restarted instance says so and idles."""

    def main(self) -> None:
        if self.restarts == 0:
            raise RuntimeError("first run fails")
        say(f"RUNNING restarts={self.restarts}")
        while not self.wait(60):
            pass


class RestartsAfterDelay:
    """A minimal supervisor: a failed worker is restarted half a second later."""

    name = "restarts-after-delay"

    @hookimpl
    def worker_exited(self, server: Server, worker: Any, exit_info: Any) -> None:
        if exit_info.outcome == "failed":
            server.restart_worker(worker, delay=0.5)


class StuckInSetup(Marked, ProcessWorker):
    """Never gets past setup(): only the orphan deadline ends it once its parent is gone."""

    def setup(self) -> None:
        say(f"IN-SETUP {self.name} pid={os.getpid()}")
        stuck_in_this_function(3600)

    def main(self) -> None:
        say("MAIN-RAN")


class StuckThread(Marked, ThreadWorker):
    def main(self) -> None:
        stuck_in_this_function(3600)


class SlowToPickle:
    """Takes a while to pickle, so sending a spawn worker to its child (and start()) is slow."""

    def __reduce__(self) -> tuple[type, tuple[()]]:
        time.sleep(0.3)
        return (SlowToPickle, ())


class SlowToStart(Marked, ProcessWorker):
    def __init__(self, name: str) -> None:
        super().__init__(name, start_method="spawn")
        self.payload = SlowToPickle()

    def main(self) -> None:
        while not self.wait(60):
            pass


class ReportsHandlers(ThreadWorker):
    """Prints HANDLERS-READY once run_forever's SIGTERM handler is installed (checked from its thread)."""

    def main(self) -> None:
        while signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None) and not self.wait(0.005):
            pass
        say("HANDLERS-READY")
        self.wait()


class InMain(Marked):
    """Says IN-MAIN from inside main(), so a test knows main() is on the stack."""

    def main(self) -> None:
        say(f"IN-MAIN {self.name}")
        while not self.wait(60):
            pass


class InMainThread(InMain, ThreadWorker):
    pass


class InMainProcess(InMain, ProcessWorker):
    pass


class InMainAsync(Marked, ThreadWorker):
    async def main(self) -> None:
        say(f"IN-MAIN {self.name}")
        while not await self.sleep(60):
            pass


class OwnHandlers(Marked, ProcessWorker):
    """Installs its own handlers for the signals a user may want; each just says it ran."""

    def setup(self) -> None:
        for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, lambda s, f: say(f"HANDLED {self.name} {signal.Signals(s).name}"))

    def main(self) -> None:
        while not self.wait(60):
            pass


class SlowTeardown(Marked, ProcessWorker):
    """Handles SIGTERM (spoc's handler) but takes an hour to tear down: only SIGKILL ends it."""

    def main(self) -> None:
        while not self.wait(60):
            pass

    def teardown(self) -> None:
        say(f"TEARDOWN {self.name}")
        stuck_in_this_function(3600)


class BusyTeardown(SlowTeardown):
    """Takes $TEARDOWN_SECONDS (default 1.5) to tear down, as a job finishing would; ``TEARDOWN-DONE`` at its end."""

    def teardown(self) -> None:
        say(f"TEARDOWN {self.name}")
        time.sleep(float(os.environ.get("TEARDOWN_SECONDS", "1.5")))
        say(f"TEARDOWN-DONE {self.name}")


class RestartsKilled(RestartsAfterDelay):
    """Restarts failed and killed workers (a stand-in for the restart plugin's on-failure policy)."""

    name = "restarts-killed"

    @hookimpl
    def worker_exited(self, server: Server, worker: Any, exit_info: Any) -> None:
        if exit_info.outcome in ("failed", "killed"):
            server.restart_worker(worker, delay=0.0)


class Announces:
    """Prints what the server's hooks say, for the tests to wait on."""

    name = "announces"

    @hookimpl
    def server_reloading(self, workers: Any) -> None:
        say(f"RELOADING {','.join(w.name for w in workers)}")

    @hookimpl
    def server_stopped(self, server: Server) -> None:
        if os.environ.get("WAIT_FOR_SECOND_SIGNAL"):
            say("ALL-ENDED")
            deadline = time.monotonic() + 30
            while len(server.signals_received) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)


class AddsLater:
    """Adds `worker` once the server has started: under run_forever(), its signal handlers are in place by then,
    and run_forever() has planned restarts, so the worker's child comes from the fork server."""

    name = "adds-later"

    def __init__(self, worker: Any) -> None:
        self.worker = worker

    @hookimpl
    def server_started(self, server: Server) -> None:
        server.add_worker(self.worker)


class StrRaises(Exception):
    def __str__(self) -> str:
        raise ValueError("no words for it")


class Raising(Marked):
    """Raises what --fault names in main(): an exception whose __str__ raises, StopIteration, or an exception
    whose class only the worker can import (a module it wrote to a directory it added to sys.path)."""

    fault = "str_raises"

    def main(self) -> None:
        if self.fault == "grandchild":  # a child of its own that inherits every fd, and outlives it
            keeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], close_fds=False)
            say(f"GRANDCHILD pid={keeper.pid}")
            raise RuntimeError("failed, leaving a grandchild that holds our fds")
        if self.fault == "str_raises":
            raise StrRaises()
        if self.fault == "stop_iteration":
            raise StopIteration("the iterator ran dry")
        directory = tempfile.mkdtemp()
        with open(os.path.join(directory, "only_here.py"), "w") as module:
            module.write("class OnlyHere(Exception):\n    pass\n")
        sys.path.insert(0, directory)
        only_here = importlib.import_module("only_here")
        raise only_here.OnlyHere("raised from a class the server cannot import")


class RaisingThread(Raising, ThreadWorker):
    pass


class RaisingProcess(Raising, ProcessWorker):
    pass


class Chatty(Marked, ProcessWorker):
    """Sends records for a while, then ends on its own: the monitor stays busy around a failure."""

    def main(self) -> None:
        end = time.monotonic() + 1.0
        while time.monotonic() < end and not self.wait(0.001):
            self.send_record("chatter", at=time.monotonic())


class ExitsFast(Marked, ThreadWorker):
    def main(self) -> None:
        say(f"DONE {self.name}")


def build(scenario: str, method: str) -> list[ThreadWorker | ProcessWorker]:
    if scenario == "basic":
        return [Idle("thread-1"), IdleProcess("process-1", start_method=method), IdleAsync("async-1")]
    if scenario == "lost_task":
        return [LosesATaskThread("lost-thread"), LosesATaskProcess("lost-process", start_method=method)]
    if scenario == "processes":
        return [IdleProcess(f"process-{i}", start_method=method) for i in range(1, 4)]
    if scenario == "many":
        return [IdleProcess(f"process-{i}", start_method=method) for i in range(1, 21)]
    if scenario == "setup_raises":
        return [Idle("thread-1"), SetupRaises("broken", start_method=method)]
    if scenario == "ignore_stop":
        return [Idle("thread-1"), IgnoresStop("stubborn", start_method=method)]
    if scenario == "stuck_in_setup":
        return [StuckInSetup("stuck-setup", start_method=method)]
    if scenario == "stuck_thread":
        return [StuckThread("stuck"), IdleProcess("process-1", start_method=method)]
    if scenario == "slow_start":
        return [SlowToStart(f"process-{i}") for i in range(1, 11)]
    if scenario == "restart_after_delay":
        return [FailsOnceProcess("flaky", start_method=method)]
    if scenario == "own_handlers":
        return [OwnHandlers("own", start_method=method), IdleProcess("process-1", start_method=method)]
    if scenario == "two_processes":
        processes: list[Any] = [InMainProcess(f"process-{i}", start_method=method) for i in (1, 2)]
        return [*processes, InMainThread("thread-1"), InMainAsync("async-1")]
    if scenario == "slow_teardown":
        return [SlowTeardown("slow", start_method=method)]
    if scenario == "sleeps_in_main":
        return [SleepsInMain("sleeper", start_method=method)]
    if scenario == "closes_fds":
        return [ClosesFds("closer", start_method=method), Idle("thread-1")]
    if scenario == "busy_teardown":
        return [BusyTeardown("busy", start_method=method)]
    if scenario.startswith("raises_"):
        fault = scenario.removeprefix("raises_")
        worker: Raising = RaisingThread("raiser")
        if method != "thread":
            worker = RaisingProcess("raiser", start_method=method)
        worker.fault = fault
        return [worker, Chatty("chatty", start_method="fork" if method == "thread" else method)]
    if scenario == "exit_fast":
        return [ExitsFast("quick-1"), ExitsFast("quick-2")]
    raise SystemExit(f"unknown scenario {scenario!r}")


def from_environment() -> Server:
    """For ``spoc run tests/apps/faults.py:from_environment``: the server of $SCENARIO, with $METHOD."""
    scenario = os.environ["SCENARIO"]
    server = Server(name=f"faults-{scenario}", plugins=[Announces()])
    for worker in build(scenario, os.environ.get("METHOD", "fork")):
        server.add_worker(worker)
    return server


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("--method", default="fork")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--from-thread", action="store_true", help="call server.start() from a short-lived thread")
    parser.add_argument("--restart-killed", action="store_true", help="restart failed and killed workers at once")
    parser.add_argument("--add-later", default="", help="add this worker after start(), so the fork server makes it")
    parser.add_argument("--user-forkserver", action="store_true", help="start multiprocessing's fork server first")
    parser.add_argument(
        "--main-blocks-sigterm", action="store_true", help="so the kernel must deliver SIGTERM to another thread"
    )
    args = parser.parse_args()
    if args.user_forkserver:
        first = multiprocessing.get_context("forkserver").Process(target=print, args=("USER-FORKSERVER-UP",))
        first.start()
        first.join()
    logging.basicConfig(level=logging.INFO, format="LOG %(levelname)s %(message)s", stream=sys.stderr)
    plugins: list[object] = [Announces()]
    if args.scenario == "restart_after_delay":
        plugins.append(RestartsAfterDelay())
    if args.restart_killed:
        plugins.append(RestartsKilled())
    built = build(args.scenario, args.method)
    late = [w for w in built if w.name == args.add_later]
    if late:
        plugins.append(AddsLater(late[0]))
    server = Server(name=f"faults-{args.scenario}", plugins=plugins)
    for worker in built:
        if worker not in late:
            server.add_worker(worker)
    if args.from_thread:
        starter = threading.Thread(target=server.start, name="short-lived-starter")
        starter.start()
        starter.join()
        processes = [w for w in server.workers if isinstance(w, ProcessWorker)]
        time_left = time.monotonic() + 0.5
        for worker in processes:
            worker.join(max(0.0, time_left - time.monotonic()))
        say("STARTER-EXITED alive=" + ",".join(str(w.is_alive()) for w in processes))
    if args.main_blocks_sigterm:
        # Threads inherit their creator's mask: block only once the server's threads exist.
        server.add_worker(ReportsHandlers("handlers"))
        server.start()
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    outcome = server.run_forever(shutdown_timeout=args.timeout)
    say(
        f"RESULT reason={outcome.reason} signal={outcome.signal} forced={outcome.forced} ok={outcome.ok} "
        f"started={len(outcome.exits)} failed={','.join(e.worker for e in outcome.failed)} "
        f"signals={','.join(server.signals_received)}"
    )
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
