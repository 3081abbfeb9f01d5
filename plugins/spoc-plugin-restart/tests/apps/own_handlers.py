"""A supervised process worker whose setup() installs its own SIGHUP, SIGUSR1 and SIGUSR2 handlers.

    python own_handlers.py START_METHOD

Prints ``READY pid=<pid> restarts=<n>`` from each run of the worker and
``HANDLED <signal> restarts=<n>`` from its handlers; killed, the worker is
restarted by the supervisor (from the server's fork server).
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from spoc import ProcessWorker, Server
from spoc_restart import Backoff, Supervisor


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


class OwnHandlers(ProcessWorker):
    def setup(self) -> None:
        for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, self.handle)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        say(f"HANDLED {signal.Signals(signum).name} restarts={self.restarts}")

    def main(self) -> None:
        say(f"READY pid={os.getpid()} restarts={self.restarts}")
        while not self.wait(60):
            pass


def main() -> int:
    server = Server("own-handlers", plugins=[Supervisor(policy="on-failure", backoff=Backoff(initial=0.0))])
    server.add_worker(OwnHandlers("own", start_method=sys.argv[1]))
    outcome = server.run_forever()
    say(f"DONE {outcome.reason} {[e.outcome for e in outcome.exits]} code={outcome.exit_code}")
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
