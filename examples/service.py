"""A service meant for ``spoc run``: a module that only builds its server, with no main block.

spoc run examples/service.py:server            # Ctrl+C or SIGTERM stops it cleanly
spoc run examples/service.py:server --log-level debug --shutdown-timeout 10
SPOC_SHUTDOWN_TIMEOUT=10 python -m spoc run examples/service.py:server
"""

from __future__ import annotations

import hashlib
import itertools

from spoc.workers import ProcessWorker, Server, ThreadWorker


class Heartbeat(ThreadWorker):
    """Says it is alive every second; wakes at once when asked to stop."""

    def main(self) -> None:
        for beat in itertools.count(1):
            print(f"{self.name}: beat {beat}", flush=True)
            if self.wait(1.0):
                return


class Hasher(ProcessWorker):
    """CPU work in a child process; checks for a stop request between rounds."""

    def setup(self) -> None:
        self.rounds = 0

    def main(self) -> None:
        digest = b"spoc"
        while self.is_running:
            for _ in range(20_000):
                digest = hashlib.sha256(digest).digest()
            self.rounds += 1
            if self.rounds == 1:
                print(f"{self.name}: first round done", flush=True)

    def teardown(self) -> None:
        print(f"{self.name}: {self.rounds} rounds, stopping", flush=True)


server = Server("service")
server.add_worker(Heartbeat(name="heartbeat"))
server.add_worker(Hasher(name="hasher"))
