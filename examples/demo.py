"""The quickstart demo: thread and process workers under a Server, then a graceful shutdown.

    python examples/demo.py [--seconds 4]

It runs until you press Ctrl+C -- or, after --seconds, sends itself the same
SIGINT a Ctrl+C would. Watch every worker stop, run its teardown, and the
server report how each one ended.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time

from spoc.workers import ProcessWorker, Server, ThreadWorker


class Poller(ThreadWorker):
    """An I/O-style worker in a thread: polls every half second, stops at once when asked."""

    def setup(self) -> None:
        self.polls = 0

    def main(self) -> None:
        while not self.wait(0.5):  # wait() returns True the moment stop is requested
            self.polls += 1
            print(f"  {self.name}: poll #{self.polls}", flush=True)

    def teardown(self) -> None:
        print(f"  {self.name}: teardown after {self.polls} polls", flush=True)


class Cruncher(ProcessWorker):
    """A CPU-style worker in its own process: crunches in small steps, checks is_running between."""

    def setup(self) -> None:
        self.rounds = 0
        self.next_report = time.monotonic() + 1.0

    def main(self) -> None:
        while self.is_running:
            sum(i * i for i in range(200_000))
            self.rounds += 1
            if time.monotonic() >= self.next_report:
                self.next_report += 1.0
                print(f"  {self.name} (pid {os.getpid()}): {self.rounds} rounds", flush=True)

    def teardown(self) -> None:
        print(f"  {self.name} (pid {os.getpid()}): teardown after {self.rounds} rounds", flush=True)


class Ticker(ThreadWorker):
    """An async worker: its whole life runs in one event loop; sleep() wakes on stop."""

    async def main(self) -> None:
        while not await self.sleep(1.0):
            print(f"  {self.name}: tick", flush=True)

    async def teardown(self) -> None:
        print(f"  {self.name}: async teardown", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="simulate Ctrl+C after this long (0: never)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")

    server = Server(name="demo")
    server.add_worker(Poller("poller"))
    server.add_worker(Ticker("ticker"))
    server.add_worker(Cruncher("cruncher-1"))
    server.add_worker(Cruncher("cruncher-2"))

    if args.seconds > 0:
        print(f"Running; press Ctrl+C to stop (a simulated Ctrl+C comes in {args.seconds:g}s).", flush=True)
        # A timer signal, not a threading.Timer: the program stays single-threaded until the server has
        # forked its process workers (see "Fork safety" in docs/workers.md).
        signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
        signal.setitimer(signal.ITIMER_REAL, args.seconds)
    outcome = server.run_forever()

    print(f"\nShutdown {'clean' if outcome.ok else 'NOT clean'} (reason: {outcome.reason}, signal: {outcome.signal})")
    for ended in outcome.exits:
        print(f"  {ended.worker:<11} {ended.outcome:<8} exitcode={ended.exitcode}")
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
