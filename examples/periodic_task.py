"""Pattern: a periodic task -- runs every N seconds and stops at once on Ctrl+C, mid-interval.

python examples/periodic_task.py [--interval 2]
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from spoc.workers import Server, ThreadWorker


class PeriodicWorker(ThreadWorker):
    """Runs execute_task() every `interval` seconds, on a fixed schedule."""

    def __init__(self, name: str, interval: float) -> None:
        super().__init__(name)
        self.interval = interval

    def main(self) -> None:
        next_run = time.monotonic()
        while self.is_running:
            self.execute_task()
            next_run += self.interval
            # wait() returns True as soon as stop is requested: no sleeping through a shutdown.
            if self.wait(max(0.0, next_run - time.monotonic())):
                break

    def execute_task(self) -> None:
        print(f"[{datetime.now():%H:%M:%S}] {self.name}: task executed", flush=True)

    def teardown(self) -> None:
        print(f"{self.name}: stopped", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()
    server = Server(name="Periodic")
    server.add_worker(PeriodicWorker("DataSync", interval=args.interval))
    return server.run_forever().exit_code


if __name__ == "__main__":
    raise SystemExit(main())
