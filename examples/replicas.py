"""Replicas: four of one worker, scaled while the service runs -- as `circusctl incr`, gunicorn's TTIN/TTOU or
`docker compose --scale` would, here from a worker of the service itself.

python examples/replicas.py            # runs crunchers 2 -> 4 -> 1 -> 0 -> 2, then stops
spoc run examples/replicas.py:server --scale cruncher=3

Each `Cruncher` replica takes every Nth number by its `self.replica` (a share of the work of its own) and
reports how far it got when it stops; a scale-down stops the highest-numbered replicas first, each through its
teardown.
"""

from __future__ import annotations

import os
import sys

from spoc.workers import ProcessWorker, Server, ThreadWorker


def say(line: str) -> None:
    """Print `line` in one write: the replicas and the server share one stdout, and a print() may write a line
    and its newline apart, letting another process's line in between."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Cruncher(ProcessWorker):
    replicas = 2

    def setup(self) -> None:
        self.done = 0
        say(f"{self.name}: replica {self.replica} started (pid {os.getpid()})")

    def main(self) -> None:
        n = self.replica
        while not self.wait(0.01):
            sum(i * i for i in range(n, n + 20_000))
            n += self.replicas
            self.done += 1

    def teardown(self) -> None:
        say(f"{self.name}: stopped after {self.done} rounds")


class Operator(ThreadWorker):
    """Scales the crunchers as an operator would, waiting each time until the server has done it."""

    def __init__(self, name: str, server: Server, counts: tuple[int, ...]) -> None:
        super().__init__(name)
        self.target = server
        self.counts = counts

    def main(self) -> None:
        for count in self.counts:
            self.target.scale("cruncher", count)
            while len(self._replicas()) != count or self.target.replica_counts()["cruncher"].running != count:
                if self.wait(0.05):  # until those stopped have ended, and the new ones run
                    return
            say(f"operator: cruncher runs {count} replica(s): {self._names()}")
            if self.wait(0.3):  # let them work a little
                return
        if self.counts:
            self.target.stop()

    def _replicas(self) -> list[str]:
        return [w.name for w in self.target.workers if w.base_name == "cruncher"]

    def _names(self) -> str:
        return ", ".join(self._replicas()) or "none"


server = Server("crunchers")
server.add_worker(Cruncher("cruncher"))
# Under `spoc run` nothing scales by itself: the count is the code's, or --scale's.
server.add_worker(Operator("operator", server, (4, 1, 0, 2) if __name__ == "__main__" else ()))

if __name__ == "__main__":
    outcome = server.run_forever()
    say(f"crunchers: {outcome.reason}, exit code {outcome.exit_code}")
    sys.exit(outcome.exit_code)
