"""Pattern: graceful shutdown -- state is saved in teardown whatever ends the program.

    python examples/graceful_shutdown.py [--state-dir DIR]

Stop it with Ctrl+C or `kill -TERM <pid>`: each worker finishes the item in
hand, saves its progress in teardown(), and the program exits 0. A second
signal forces the shutdown; a worker stuck past the deadline is reported with
its stack.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from spoc.workers import ProcessWorker, Server, ThreadWorker


class Checkpointing:
    """Counts items and writes the count to `<state_dir>/<name>.json` in teardown."""

    name: str

    def __init__(self, name: str, state_dir: str) -> None:
        super().__init__(name)  # type: ignore[call-arg]
        self.state_file = Path(state_dir) / f"{name}.json"

    def setup(self) -> None:
        previous = json.loads(self.state_file.read_text()) if self.state_file.exists() else {"done": 0}
        self.done = int(previous["done"])
        print(f"{self.name}: resuming at {self.done} (pid {os.getpid()})", flush=True)

    def main(self) -> None:
        while not self.wait(0.05):  # type: ignore[attr-defined]
            self.done += 1  # one unit of work

    def teardown(self) -> None:
        self.state_file.write_text(json.dumps({"done": self.done}))
        print(f"{self.name}: saved {self.done} to {self.state_file}", flush=True)


class ThreadCounter(Checkpointing, ThreadWorker):
    pass


class ProcessCounter(Checkpointing, ProcessWorker):
    pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", default=os.path.join(tempfile.gettempdir(), "spoc-graceful"))
    args = parser.parse_args()
    os.makedirs(args.state_dir, exist_ok=True)

    server = Server(name="Graceful")
    server.add_worker(ThreadCounter("thread-counter", args.state_dir))
    server.add_worker(ProcessCounter("process-counter", args.state_dir))
    outcome = server.run_forever(shutdown_timeout=5.0)
    print(f"exiting: {outcome.reason} ({outcome.signal}), clean={outcome.ok}", flush=True)
    return outcome.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
