"""A supervised server: a flaky consumer is restarted with backoff, a hung one is killed and restarted.

    python examples/supervised.py

The consumer fails on its first two runs; the poller hangs on its first run
(a call that never returns) until the watchdog kills it. Both come back as
fresh instances; then the server shuts down as if it got SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import time

from spoc import ProcessWorker, Server, hookimpl
from spoc_restart import Backoff, Supervisor


class Consumer(ProcessWorker):
    restart_policy = "on-failure"  # the default; "always" would also restart a clean end

    def main(self) -> None:
        if self.restarts < 2:
            raise ConnectionError(f"broker went away (run {self.restarts})")
        print(f"consumer: running, after {self.restarts} restarts", flush=True)
        while not self.wait(0.5):
            pass


class Poller(ProcessWorker):
    watchdog_timeout = 1.0  # seconds without a heartbeat (is_running, wait, sleep, heartbeat())

    def main(self) -> None:
        if self.restarts == 0:
            time.sleep(3600)  # stands for a call that never returns: the watchdog kills this run
        print(f"poller: running, after {self.restarts} restart", flush=True)
        while not self.wait(0.5):
            pass


class StopWhenBothRun:
    """Sends the server SIGTERM once both workers run again: the example's end."""

    name = "stop-when-both-run"

    def __init__(self) -> None:
        self.running: set[str] = set()

    @hookimpl
    def worker_started(self, worker: ProcessWorker) -> None:
        if worker.restarts >= {"consumer": 2, "poller": 1}[worker.name]:
            self.running.add(worker.name)
        if self.running == {"consumer", "poller"}:
            os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)-7s %(name)s: %(message)s")
    supervisor = Supervisor(strategy="one_for_one", start_within=60, backoff=Backoff(initial=0.2))
    server = Server("supervised", plugins=[supervisor, StopWhenBothRun()])
    server.add_worker(Consumer("consumer"))
    server.add_worker(Poller("poller"))
    outcome = server.run_forever()
    for name, status in supervisor.status(server).items():
        print(f"{name}: {status.restarts} restarts, last error: {status.last_error}", flush=True)
    return outcome.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
