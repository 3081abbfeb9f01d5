"""The programs the plugin's tests run under `spoc run`, chosen by SPOC_TEST_APP (and SPOC_TEST_SIDE, a file;
SPOC_TEST_START_METHOD, the process workers' start method but in ``order``).

- ``order``: a thread, an async thread, an async process and a process worker (each start method) print
  numbered lines and log records in setup, main and teardown, then end.
- ``flood_kill``: a process worker prints numbers as fast as it can, noting in the side file how many it wrote,
  and saying its pid in the FIFO SPOC_TEST_FIFO once it has written 20,000.
- ``long_lines``: two process workers print 64 KiB lines of their own letter at once.
- ``odd_lines``: a process worker prints lines JSON must escape, and bytes that are not UTF-8.
- ``segfault``, ``abort``: a process worker prints, then crashes.
- ``setup_fails``: a process worker says what it does at boot, then fails in setup().
- ``flood``: two process workers print as fast as they can until they are stopped.
- ``structlog``: a thread, a process (each start method) and an async process worker log through structlog.
- ``huge_lines``: a process worker and a thread worker each print a 10 MiB line, a 3 MiB line of three-byte
  characters, and a short line; the server keeps up to 64 MiB for a slow stdout.
- ``own_file``: a process worker's setup() points its fd 1 at its own file (SPOC_TEST_SIDE), prints to it,
  logs a record, then fails in main().
- ``stray``: a thread worker whose own helper thread (no worker's) writes parts of a line between the worker's
  records; then the worker writes bytes to ``sys.stdout.buffer`` (a character cut between two writes), and
  says what ``fileno()`` and ``isatty()`` answer.
- ``chatty``: a thread worker and a process worker say they run in the FIFO SPOC_TEST_SIDE, then print a
  numbered line every few milliseconds until stopped.
- ``replicas``: three replicas of a process worker each print their name.
- ``stuck``: a process worker and a thread worker that never look at their stop request (each sleeps in a
  loop), so that a stop past the deadline is escalated, the thread abandoned.
- ``burst``: two process workers print 20,000 lines of 200 bytes each, say "done <name>" in the side file (a
  FIFO the test reads), and wait to be stopped; the server keeps at most 64 KiB for a slow stdout.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import sys
import threading
import time

from spoc import ProcessWorker, Server, ThreadWorker
from spoc_logging import Logging

log = logging.getLogger("app")
MODE = os.environ.get("SPOC_TEST_APP", "order")
SIDE = os.environ.get("SPOC_TEST_SIDE", "")
START = os.environ.get("SPOC_TEST_START_METHOD", "fork")


def note(count: int) -> None:
    """Write `count` to the side file, whole (a reader never sees half a number)."""
    with open(SIDE + ".tmp", "w") as f:
        f.write(str(count))
    os.replace(SIDE + ".tmp", SIDE)


class Numbered:
    name: str

    def setup(self) -> None:
        print(f"{self.name} setup")

    def main(self) -> None:
        for i in range(5):
            print(f"{self.name} line {i}")
            log.info("%s record %d", self.name, i, extra={"i": i})

    def teardown(self) -> None:
        print(f"{self.name} teardown", file=sys.stderr)


class NumberedThread(Numbered, ThreadWorker):
    pass


class NumberedProcess(Numbered, ProcessWorker):
    pass


class NumberedAsync:
    name: str

    async def setup(self) -> None:
        print(f"{self.name} setup")

    async def main(self) -> None:
        for i in range(5):
            await asyncio.sleep(0)
            print(f"{self.name} line {i}")
            log.info("%s record %d", self.name, i, extra={"i": i})

    async def teardown(self) -> None:
        print(f"{self.name} teardown", file=sys.stderr)


class NumberedAsyncThread(NumberedAsync, ThreadWorker):
    pass


class NumberedAsyncProcess(NumberedAsync, ProcessWorker):
    pass


class FloodsUntilKilled(ProcessWorker):
    """Prints numbers as fast as it can; notes how many in the side file every 1,000, and at 20,000 says so in
    the FIFO SPOC_TEST_FIFO."""

    restart_policy = "never"

    def main(self) -> None:
        i = 0
        while True:
            print(i)
            i += 1
            if i % 1000 == 0:
                note(i)
                if i == 20_000:
                    with open(os.environ["SPOC_TEST_FIFO"], "w") as fifo:
                        fifo.write(f"{os.getpid()}\n")


class LongLines(ProcessWorker):
    restart_policy = "never"

    def main(self) -> None:
        line = self.name[0] * 65536
        for _ in range(20):
            print(line)


ODD_LINES = ['quote " and backslash \\', "tab\there", "ünïcødé ✓", "\x07bell", "emoji 🎉", "", "  spaced  "]


class PrintsOddLines(ProcessWorker):
    def main(self) -> None:
        for line in ODD_LINES:
            print(line)
        sys.stdout.flush()
        sys.stdout.buffer.write(b"\xff\xfe not utf-8\n")
        sys.stdout.flush()


class Crashes(ProcessWorker):
    restart_policy = "never"

    def main(self) -> None:
        for i in range(3):
            print(f"about to crash {i}")
        if MODE == "segfault":
            ctypes.string_at(0)
        os.abort()


class FailsAtBoot(ProcessWorker):
    restart_policy = "never"

    def setup(self) -> None:
        print("reading the configuration")
        print("connecting to the database at db:5432", file=sys.stderr)
        raise ConnectionRefusedError("db:5432 refused the connection")

    def main(self) -> None:
        pass


class Floods(ProcessWorker):
    def main(self) -> None:
        i = 0
        line = "x" * 200
        while self.is_running:
            print(i, line)
            i += 1
            if SIDE and i == 100_000:
                note(i)


class UsesStructlog:
    name: str

    def main(self) -> None:
        import structlog

        structlog.get_logger().info("hello", job=3)

    def teardown(self) -> None:
        import structlog

        structlog.get_logger().warning("bye")


class UsesStructlogThread(UsesStructlog, ThreadWorker):
    pass


class UsesStructlogProcess(UsesStructlog, ProcessWorker):
    pass


class UsesStructlogAsync(ProcessWorker):
    async def main(self) -> None:
        import structlog

        await asyncio.sleep(0)
        structlog.get_logger().info("hello", job=3)

    async def teardown(self) -> None:
        import structlog

        structlog.get_logger().warning("bye")


class PrintsToItsOwnFile(ProcessWorker):
    restart_policy = "never"

    def setup(self) -> None:
        os.dup2(os.open(SIDE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
        print("to my own file")
        log.warning("a record after dup2")

    def main(self) -> None:
        print("still to my own file")
        raise RuntimeError("failed after dup2")


class WritesStrayText(ThreadWorker):
    def main(self) -> None:
        for i in range(50):
            helper = threading.Thread(target=self.stray, args=(i,))  # a thread of its own: no worker's
            helper.start()
            helper.join()
            log.info("record %d", i)
        sys.stdout.buffer.write(b"bytes from a thread worker\n")
        sys.stdout.buffer.write(b"euro \xe2\x82")
        sys.stdout.buffer.write(b"\xac cut between two writes\n")
        sys.stdout.buffer.flush()
        print(f"fileno={sys.stdout.fileno()} isatty={sys.stdout.isatty()} buffer.fileno={sys.stdout.buffer.fileno()}")

    @staticmethod
    def stray(i: int) -> None:
        sys.stdout.write(f"helper part {i} ")
        sys.stdout.flush()


HUGE_LINES = ["a" * (10 << 20), "€" * (1 << 20), "after"]


class PrintsHugeLines:
    def main(self) -> None:
        for line in HUGE_LINES:
            print(line)


class PrintsHugeLinesProcess(PrintsHugeLines, ProcessWorker):
    pass


class PrintsHugeLinesThread(PrintsHugeLines, ThreadWorker):
    pass


class Chatty:
    name: str

    def main(self) -> None:
        with open(SIDE, "w") as fifo:
            fifo.write(f"{self.name} running\n")
        i = 0
        while not self.wait(0.005):  # type: ignore[attr-defined]
            print(f"{self.name} line {i}")
            i += 1


class ChattyThread(Chatty, ThreadWorker):
    pass


class ChattyProcess(Chatty, ProcessWorker):
    pass


class Bursts(ProcessWorker):
    def main(self) -> None:
        line = "x" * 200
        for i in range(20_000):
            print(i, line)
        with open(SIDE, "w") as fifo:
            fifo.write(f"done {self.name}\n")
        while not self.wait(60):
            pass


class Stuck:
    def main(self) -> None:
        print("stuck", flush=True)
        while True:
            time.sleep(0.05)  # never looks at its stop request


class StuckThread(Stuck, ThreadWorker):
    pass


class StuckProcess(Stuck, ProcessWorker):
    pass


class SaysItsName(ProcessWorker):
    replicas = 3

    def main(self) -> None:
        print(f"I am {self.name}, replica {self.replica}", flush=True)
        self.wait()


PLUGINS = {
    "burst": [Logging(buffer=1 << 16)],
    "huge_lines": [Logging(buffer=64 << 20)],  # the test's reader may lag: 14 MiB of lines must wait, not drop
}
server = Server("logging-app", plugins=PLUGINS.get(MODE, []))
if MODE == "order":
    server.add_worker(NumberedThread("thread"))
    server.add_worker(NumberedAsyncThread("async"))
    server.add_worker(NumberedAsyncProcess("async-process"))
    for method in ("fork", "forkserver", "spawn"):
        server.add_worker(NumberedProcess(method, start_method=method))
elif MODE == "replicas":
    server.add_worker(SaysItsName("named", start_method=START))
elif MODE == "stuck":
    server.add_worker(StuckThread("stuck-thread"))
    server.add_worker(StuckProcess("stuck-process", start_method=START))
elif MODE == "flood_kill":
    server.add_worker(FloodsUntilKilled("flood", start_method=START))
elif MODE == "long_lines":
    server.add_worker(LongLines("a-writer", start_method=START))
    server.add_worker(LongLines("b-writer", start_method=START))
elif MODE == "odd_lines":
    server.add_worker(PrintsOddLines("odd", start_method=START))
elif MODE in ("segfault", "abort"):
    server.add_worker(Crashes("crasher", start_method=START))
elif MODE == "setup_fails":
    server.add_worker(FailsAtBoot("booter", start_method=START))
elif MODE == "structlog":
    server.add_worker(UsesStructlogThread("thread"))
    server.add_worker(UsesStructlogAsync("async-process"))
    for method in ("fork", "forkserver", "spawn"):
        server.add_worker(UsesStructlogProcess(method, start_method=method))
elif MODE == "huge_lines":
    server.add_worker(PrintsHugeLinesProcess("process", start_method=START))
    server.add_worker(PrintsHugeLinesThread("thread"))
elif MODE == "own_file":
    server.add_worker(PrintsToItsOwnFile("own", start_method=START))
elif MODE == "stray":
    server.add_worker(WritesStrayText("thread"))
elif MODE == "chatty":
    server.add_worker(ChattyThread("thread"))
    server.add_worker(ChattyProcess("process", start_method=START))
elif MODE == "burst":
    server.add_worker(Bursts("burst-1"))
    server.add_worker(Bursts("burst-2"))
elif MODE == "flood":
    server.add_worker(Floods("flood-1"))
    server.add_worker(Floods("flood-2"))
