"""Pattern: a multi-stage pipeline across a process boundary, done right.

    python examples/pipeline.py [--items 10]

The user guide's pipeline hands `queue.Queue` objects to a ProcessWorker; a
queue.Queue only works between threads of one process, so the child process
gets its own copy and nothing ever arrives (spoc warns about it). Here every
queue a ProcessWorker touches is a `multiprocessing.Queue`. A `None` marks the
end of the input: each stage passes it on and ends, and `run_forever()`
returns once every worker has ended on its own.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
from typing import Any

from spoc.workers import ProcessWorker, Server, ThreadWorker

END = None


class Stage:
    """Moves items from `inbox` to `outbox` through process_item(); forwards END and stops."""

    name: str

    def __init__(self, name: str, inbox: Any, outbox: Any) -> None:
        super().__init__(name)  # type: ignore[call-arg]
        self.inbox = inbox
        self.outbox = outbox

    def main(self) -> None:
        while self.is_running:  # type: ignore[attr-defined]
            try:
                item = self.inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is END:
                if self.outbox is not None:
                    self.outbox.put(END)
                return
            result = self.process_item(item)
            if self.outbox is not None and result is not None:
                self.outbox.put(result)

    def process_item(self, item: Any) -> Any:
        raise NotImplementedError


class FetchStage(Stage, ThreadWorker):
    def process_item(self, item: int) -> dict[str, Any]:
        return {"id": item, "raw_data": f"data-{item}"}


class TransformStage(Stage, ProcessWorker):
    """CPU-heavy work in its own process, fed and drained by multiprocessing queues."""

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "transformed": True, "checksum": sum(map(ord, item["raw_data"]))}


class SaveStage(Stage, ThreadWorker):
    def process_item(self, item: dict[str, Any]) -> None:
        print(f"Saved: {item}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10)
    args = parser.parse_args()

    to_fetch: queue.Queue[Any] = queue.Queue()  # thread -> thread: a queue.Queue is right
    to_transform: Any = multiprocessing.Queue()  # crosses into the process worker
    to_save: Any = multiprocessing.Queue()  # comes back out of it

    server = Server(name="Pipeline")
    server.add_worker(FetchStage("Fetch", to_fetch, to_transform))
    server.add_worker(TransformStage("Transform", to_transform, to_save))
    server.add_worker(SaveStage("Save", to_save, None))
    for i in range(args.items):
        to_fetch.put(i)
    to_fetch.put(END)

    outcome = server.run_forever()
    print(f"pipeline finished: {outcome.reason}", flush=True)
    return outcome.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
