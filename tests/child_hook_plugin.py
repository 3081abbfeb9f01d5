"""A plugin module with a child_starting hook: spoc sends it to process workers' children by its name."""

from __future__ import annotations

import os
from typing import Any

from spoc import hookimpl


@hookimpl
def child_starting(worker: Any, server_name: str) -> None:
    os.environ["SPOC_TEST_CHILD_HOOK"] = f"{server_name}/{worker.name}"
    worker.send_record("test.child_starting", pid=os.getpid(), server=server_name)


class RaisesInChild:
    """An object plugin (it pickles) whose child_starting raises."""

    name = "raises-in-child"

    @hookimpl
    def child_starting(self, worker: Any) -> None:
        raise RuntimeError(f"plugin bug in the child of {worker.name}")
