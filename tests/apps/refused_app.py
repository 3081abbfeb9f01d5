"""A server whose plugin refuses a worker's setting (``server``), or whose check hook has a bug (``buggy``)."""

from __future__ import annotations

from typing import Any

from spoc import Server, ThreadWorker, hookimpl


class Painted(ThreadWorker):
    colour = "blue"

    def main(self) -> None:
        self.wait()


class Colours:
    name = "colours"

    @hookimpl
    def worker_check(self, worker: Any) -> None:
        if worker.colour not in ("red", "green"):
            raise ValueError(f"worker {worker.name!r}: colour={worker.colour!r} is not one of 'red', 'green'")


class Buggy:
    name = "buggy"

    @hookimpl
    def worker_check(self, worker: Any) -> None:
        worker.no_such_attribute  # noqa: B018  (the bug)


server = Server("refused", plugins=[Colours()])
server.add_worker(Painted("painted"))

buggy = Server("buggy", plugins=[Buggy()])
buggy.add_worker(Painted("painted"))
