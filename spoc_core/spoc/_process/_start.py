"""The one way a child process is made to run a worker, whoever makes it: the server or its fork server.

`fork_child` forks and does what multiprocessing's fork does around it
(flush the streams; after the life, its exit handlers and ``os._exit``) and no
more: start latency, its bootstrap costs a fresh fork a third of its start-up
time. Its life after the fork is `run_forked` within `end_forked_child`, which
the fork server's standby runs too once a request has said whose child it is.
`start_with_multiprocessing` has multiprocessing make the child.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any, NoReturn

from .._errors import ErrorRecord
from .._events import make_event
from .._worker import AbstractWorker
from ._child import (
    ChildOptions,
    EventWriter,
    die_by_signal,
    flush_std_streams,
    process_entry,
    reset_after_fork,
    run_child,
    run_multiprocessing_exit,
)

__all__ = ["end_forked_child", "fork_child", "run_forked", "start_with_multiprocessing"]


def fork_child(
    name: str,
    worker: Callable[[], AbstractWorker],
    control_fd: int,
    event_fd: int,
    options: ChildOptions,
    keep: frozenset[int] = frozenset(),
    first: Callable[[], None] | None = None,
) -> int:
    """Fork a child that runs the worker `worker()` returns there; return its pid. In the child: `first()`,
    then every tracked fd but the pipes and `keep` is closed, then `worker()` (a failure is a setup error)."""
    flush_std_streams()
    pid = os.fork()
    if pid:
        return pid

    def life() -> int:
        if first is not None:
            first()
        reset_after_fork(keep | {control_fd, event_fd})
        return run_forked(name, worker, control_fd, event_fd, options)

    end_forked_child(life)


def run_forked(
    name: str, worker: Callable[[], AbstractWorker], control_fd: int, event_fd: int, options: ChildOptions
) -> int:
    """In a forked child whose inherited fds are dealt with: run the worker `worker()` returns (a failure there
    is a setup error); return the exit code for `end_forked_child`."""
    try:
        running = worker()
    except BaseException as exc:
        writer = EventWriter(event_fd)
        writer.send(make_event(name, "error", phase="setup", error=ErrorRecord.from_exception(exc, "setup")))
        writer.close()
        return 1
    return run_child(running, control_fd, event_fd, options)


def end_forked_child(life: Callable[[], int]) -> NoReturn:
    """Run a forked child's `life`, then end the process as multiprocessing ends a forked one: its exit
    handlers, then ``os._exit`` with the code (by the signal, for a negative one)."""
    code = 1
    try:
        code = life()
        run_multiprocessing_exit()
        if code < 0:
            die_by_signal(-code)
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def start_with_multiprocessing(
    method: str, worker: AbstractWorker, control_fd: int, event_fd: int, options: ChildOptions
) -> multiprocessing.process.BaseProcess:
    """Have multiprocessing start a child (`method`: ``spawn`` or ``forkserver``) that runs `worker`."""
    control = Connection(os.dup(control_fd), writable=False)
    events = Connection(os.dup(event_fd), readable=False)
    stdio = tuple((number, Connection(os.dup(fd))) for number, fd in options.stdio)
    try:
        context: Any = multiprocessing.get_context(method)
        process: multiprocessing.process.BaseProcess = context.Process(
            target=process_entry,
            args=(worker, control, events, replace(options, stdio=()), stdio),
            name=f"spoc:{worker.name}",
        )
        process.start()
    finally:
        for conn in (control, events, *(conn for _, conn in stdio)):
            conn.close()
    return process
