"""A server whose plugin's worker_check hook has a bug: spoc run shows its traceback (a refusal would be one line)."""

from __future__ import annotations

from typing import Any

from spoc import Server, ThreadWorker, hookimpl


class Painted(ThreadWorker):
    def main(self) -> None:
        self.wait()


class Buggy:
    name = "buggy"

    @hookimpl
    def worker_check(self, worker: Any) -> None:
        worker.no_such_attribute  # noqa: B018  (the bug)


server = Server("buggy", plugins=[Buggy()])
server.add_worker(Painted("painted"))
