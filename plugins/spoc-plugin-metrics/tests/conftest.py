"""Shared fixtures. The installed plugin serves every server these tests make: on a free loopback port, never on 9464.

The programs the tests run use the core's test harness (its ``tests/harness.py``
in the spoc repository): each runs in its own session, and every test is
checked for processes and threads left behind.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["SPOC_METRICS_ADDR"] = "127.0.0.1"
os.environ["SPOC_METRICS_PORT"] = "0"  # inherited by the programs the tests run

CHECKOUT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(CHECKOUT / "tests"))

from harness import App, assert_no_survivors, children_of_this_process  # noqa: E402
from spoc._linux import set_child_subreaper  # noqa: E402

set_child_subreaper()

HELPER_THREADS = ("QueueFeederThread", "Thread-")
"""Daemon threads that are not leaks: multiprocessing queue feeders, the harness's pipe readers."""


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    """Fail a test that leaves a process or a thread (the endpoint's, a worker's) running."""
    processes_before = set(children_of_this_process())
    threads_before = set(threading.enumerate())
    yield
    assert_no_survivors(tuple(processes_before))
    deadline = time.monotonic() + 10.0
    for thread in set(threading.enumerate()) - threads_before:
        if thread.daemon and thread.name.startswith(HELPER_THREADS):
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        assert not thread.is_alive(), f"thread left running: {thread.name}"


@pytest.fixture(params=["fork", "forkserver", "spawn"])
def start_method(request: pytest.FixtureRequest) -> str:
    """Each process worker's start method: a child's counts reach the server under all of them."""
    return str(request.param)


@pytest.fixture
def app() -> Iterator[list[App]]:
    """Programs a test starts (append them); each is killed with its group at the end."""
    started: list[App] = []
    yield started
    for program in started:
        program.close()
