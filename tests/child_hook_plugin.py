"""A plugin module with the hooks of the child: spoc sends it to process workers' children by its name."""

from __future__ import annotations

import os
from typing import Any

import spoc
from spoc import hookimpl


@hookimpl
def child_starting(worker: Any, server_name: str, server_pid: int) -> None:
    os.environ["SPOC_TEST_CHILD_HOOK"] = f"{server_name}/{worker.name}"
    worker.send_record("test.child_starting", pid=os.getpid(), server=server_name, server_pid=server_pid)


@hookimpl
def child_stopping(worker: Any, server_name: str, server_pid: int) -> None:
    current = spoc.current_worker()
    worker.send_record(
        "test.child_stopping",
        pid=os.getpid(),
        server=server_name,
        server_pid=server_pid,
        phase=worker.lifecycle_phase,
        current=None if current is None else current.name,
    )


class OnlyStopping:
    """An object plugin implementing only child_stopping: it travels to children all the same."""

    name = "only-stopping"

    @hookimpl
    def child_stopping(self, worker: Any) -> None:
        worker.send_record("test.only_stopping")


class RaisesInChild:
    """An object plugin (it pickles) whose child_starting raises."""

    name = "raises-in-child"

    @hookimpl
    def child_starting(self, worker: Any) -> None:
        raise RuntimeError(f"plugin bug in the child of {worker.name}")


class Ordered:
    """Reports its name from the child; `when` is "tryfirst", "trylast", "wrapper" or "" (plain)."""

    def __init__(self, name: str, when: str = "") -> None:
        self.name = name
        self.when = when

    def report(self, worker: Any) -> None:
        worker.send_record("test.order", plugin=self.name)


class PlainOrdered(Ordered):
    @hookimpl
    def child_starting(self, worker: Any) -> None:
        self.report(worker)


class FirstOrdered(Ordered):
    @hookimpl(tryfirst=True)
    def child_starting(self, worker: Any) -> None:
        self.report(worker)


class LastOrdered(Ordered):
    @hookimpl(trylast=True)
    def child_starting(self, worker: Any) -> None:
        self.report(worker)


class WrappingOrdered(Ordered):
    @hookimpl(wrapper=True)
    def child_starting(self, worker: Any) -> Any:
        self.report(worker)
        return (yield)


class AnnouncesEvents:
    """An object plugin whose child_event sends a record naming the event about to be sent (so it arrives first)."""

    name = "announces-events"

    @hookimpl
    def child_event(self, worker: Any, event: Any) -> None:
        worker.send_record("test.child_event", kind=event.kind, pid=os.getpid(), same=event.worker == worker.name)
