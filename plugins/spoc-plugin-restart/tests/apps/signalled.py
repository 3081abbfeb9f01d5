"""A server under Supervisor(policy="always") with a thread and a process worker; prints READY when both run.

SIGTERM or SIGINT must stop it cleanly: a stop is never taken for a failure, and nothing restarts.
"""

from __future__ import annotations

import sys

from spoc import ProcessWorker, Server, ThreadWorker, hookimpl
from spoc_restart import Supervisor


class Waits(ThreadWorker):
    def main(self) -> None:
        while not self.wait(60):
            pass


class WaitsInChild(ProcessWorker):
    def main(self) -> None:
        while not self.wait(60):
            pass


class Ready:
    name = "ready"

    def __init__(self) -> None:
        self.started: set[str] = set()

    @hookimpl
    def worker_started(self, worker: ThreadWorker) -> None:
        print(f"STARTED {worker.name} restarts={worker.restarts}", flush=True)
        self.started.add(worker.name)
        if self.started == {"thread", "process"}:
            print("READY", flush=True)


def main() -> int:
    server = Server("signalled", plugins=[Supervisor(policy="always"), Ready()])
    server.add_worker(Waits("thread"))
    server.add_worker(WaitsInChild("process"))
    outcome = server.run_forever(shutdown_timeout=10)
    print(f"DONE {outcome.reason} {sorted(e.outcome for e in outcome.exits)} code={outcome.exit_code}", flush=True)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
