"""Helpers for the restart plugin's tests: wait for a worker's n-th run."""

from __future__ import annotations

from typing import Any

from spoc.testing import HookRecorder


def running(spoc_hooks: HookRecorder, name: str, restarts: int) -> Any:
    """The record of `name`'s run number `restarts` (0 for the first), once it came."""
    return spoc_hooks.wait_for("worker_record", worker=name, topic="test.running", data={"restarts": restarts})


def data_of(call: Any) -> dict[str, Any]:
    return dict(call["data"])
