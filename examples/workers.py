"""A tour of spoc's workers, the runnable companion of the user guide.

    python examples/workers.py [--seconds 5]

Thread, process and async workers, lifecycle events, context, a failure that
is reported with its traceback while everything else keeps running, and a
graceful shutdown on Ctrl+C (simulated after --seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import multiprocessing
import os
import queue
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from spoc.workers import ProcessWorker, Server, ThreadWorker, set_uvloop_if_available


class LogWatcher(ThreadWorker):
    """I/O-bound, in a thread: follows a log file and reports ERROR lines."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self.path = path

    def setup(self) -> None:
        self.log_file = self.path.open()
        self.log_file.seek(0, 2)

    def main(self) -> None:
        while self.is_running:
            line = self.log_file.readline()
            if not line:
                self.wait(0.1)  # not time.sleep: a stop wakes it at once
            elif "ERROR" in line:
                print(f"{self.name}: error detected: {line.strip()}", flush=True)

    def teardown(self) -> None:
        self.log_file.close()


class LogWriter(ThreadWorker):
    """Writes to the watched log, so the watcher has something to see."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self.path = path

    def main(self) -> None:
        count = 0
        with self.path.open("a") as log:
            while not self.wait(0.4):
                count += 1
                level = "ERROR" if count % 3 == 0 else "INFO"
                log.write(f"{level} event {count}\n")
                log.flush()


class HashCalculator(ProcessWorker):
    """CPU-bound, in its own process: hashes files named on a multiprocessing queue."""

    def __init__(self, name: str, files: Any) -> None:
        super().__init__(name)
        self.files = files  # a multiprocessing.Queue: it crosses the process boundary

    def setup(self) -> None:
        self.processed_count = 0

    def main(self) -> None:
        while self.is_running:
            try:
                path = self.files.get(timeout=0.2)
            except queue.Empty:
                continue
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            self.processed_count += 1
            print(f"{self.name} (pid {os.getpid()}): {Path(path).name} sha256={digest[:16]}...", flush=True)

    def teardown(self) -> None:
        print(f"{self.name}: hashed {self.processed_count} files", flush=True)


class MonitoredWorker(ThreadWorker):
    """Lifecycle events, with state kept on self.context."""

    def lifecycle(self, event_type: str, **data: Any) -> None:
        if event_type == "startup":
            print(f"{self.name} is starting up", flush=True)
            self.context.start_time = time.time()
        elif event_type == "shutdown":
            print(f"{self.name} ran for {time.time() - self.context.start_time:.2f} seconds", flush=True)
        elif event_type == "error":
            print(f"{self.name} error in {data['phase']}: {data['exception']!r}", flush=True)

    def main(self) -> None:
        while not self.wait(1.0):
            pass


class AsyncAPIWorker(ThreadWorker):
    """Async: setup, main and teardown share one event loop (uvloop when available)."""

    async def setup(self) -> None:
        self.session = {"opened_in": id(asyncio.get_running_loop())}

    async def main(self) -> None:
        while self.is_running:
            await asyncio.sleep(0.05)  # stands for an HTTP request
            same_loop = self.session["opened_in"] == id(asyncio.get_running_loop())
            print(f"{self.name}: fetched on {type(asyncio.get_running_loop()).__name__}, same loop={same_loop}")
            await self.sleep(1.5)  # returns at once when stop is requested

    async def teardown(self) -> None:
        self.session.clear()


class FlakyWorker(ProcessWorker):
    """Fails in main(): the parent logs the child's traceback once; the others keep running."""

    def main(self) -> None:
        raise ConnectionError("upstream refused the connection")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0, help="simulate Ctrl+C after this long (0: never)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)-7s %(message)s", stream=sys.stderr)
    set_uvloop_if_available()

    workdir = Path(tempfile.mkdtemp(prefix="spoc-tour-"))
    log_path = workdir / "app.log"
    log_path.touch()
    files: Any = multiprocessing.Queue()
    for i in range(3):
        sample = workdir / f"sample-{i}.bin"
        sample.write_bytes(os.urandom(64 * 1024))
        files.put(str(sample))

    server = Server(name="Tour")
    server.add_worker(LogWatcher("log-watcher", log_path))
    server.add_worker(LogWriter("log-writer", log_path))
    server.add_worker(HashCalculator("hasher", files))
    server.add_worker(MonitoredWorker("monitored"))
    server.add_worker(AsyncAPIWorker("async-api"))
    server.add_worker(FlakyWorker("flaky"))

    if args.seconds > 0:
        # A timer signal, not a threading.Timer: the program stays single-threaded until the server has
        # forked its process workers (see "Fork safety" in docs/workers.md).
        signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
        signal.setitimer(signal.ITIMER_REAL, args.seconds)
    outcome = server.run_forever()
    for ended in outcome.exits:
        print(f"{ended.worker:<12} {ended.outcome}", flush=True)
    # The flaky worker failed on purpose; everything else stopped cleanly.
    return 0 if [e.worker for e in outcome.failed] == ["flaky"] else 1


if __name__ == "__main__":
    sys.exit(main())
