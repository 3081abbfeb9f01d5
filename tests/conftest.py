"""Shared fixtures: every test is checked for leftover processes and worker threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from harness import App, assert_no_survivors, children_of_this_process
from spoc._linux import set_child_subreaper

set_child_subreaper()

HELPER_THREADS = ("QueueFeederThread", "Thread-")
"""Daemon threads that are not leaks: multiprocessing queue feeders, the harness's pipe readers."""

START_METHODS = ["fork", "forkserver", "spawn"]


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    """Fail a test that leaves a process or a worker thread running."""
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


@pytest.fixture
def app_factory() -> Iterator[type[App]]:
    """Start programs with `app_factory(*args)`; each is killed with its group at the end of the test."""
    started: list[App] = []

    def make(*args: str, **kwargs: object) -> App:
        app = App(*args, **kwargs)  # type: ignore[arg-type]
        started.append(app)
        return app

    yield make  # type: ignore[misc]
    for app in started:
        app.close()


@pytest.fixture(params=START_METHODS)
def start_method(request: pytest.FixtureRequest) -> str:
    return str(request.param)
