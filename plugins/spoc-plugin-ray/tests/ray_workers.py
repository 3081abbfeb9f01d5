"""Workers the tests run on the ``ray`` backend: importable in the actors (the tests' directory is on their path)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from typing import Any

import spoc
from spoc import ProcessWorker


class Far(ProcessWorker):
    """Says where it runs, waits for the stop, says goodbye in its teardown."""

    backend = "ray"

    def setup(self) -> None:
        current = spoc.current_worker()
        self.send_record("test.where", pid=os.getpid(), current=None if current is None else current.name)

    def main(self) -> None:
        for i in range(3):
            self.send_record("test.count", i=i)
        self.wait()

    def teardown(self) -> None:
        self.send_record("test.teardown")


class FarAsync(Far):
    async def main(self) -> None:
        await asyncio.sleep(0)
        self.send_record("test.async", loop=type(asyncio.get_running_loop()).__name__)
        await self.sleep(3600)


class Fails(Far):
    def main(self) -> None:
        raise LookupError("no such shard: 7")


class IgnoresStop(Far):
    """Never looks at its stop flag: only the deadline's kill ends it."""

    def main(self) -> None:
        self.send_record("test.stuck")
        threading.Event().wait()


class HoldsAGenerator(Far):
    """Holds a generator: a worker that cannot be sent to Ray."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.batches = (i for i in range(3))


class Sleeper(Far):
    def main(self) -> None:
        while not self.wait(0.5):
            time.sleep(0)


class OnANode(Far):
    """Says which Ray node it runs on."""

    def setup(self) -> None:
        import ray

        self.send_record("test.node", node=ray.get_runtime_context().get_node_id(), pid=os.getpid())


class Anywhere(ProcessWorker):
    """A ProcessWorker that names no backend of its own: a child, unless its plugin_options say otherwise."""

    def setup(self) -> None:
        self.send_record("test.where", program=sys.argv[0], pid=os.getpid())

    def main(self) -> None:
        self.wait()
