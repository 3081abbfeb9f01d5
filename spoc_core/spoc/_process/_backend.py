"""The ``process`` backend: the server's side of its process workers (see the package docstring)."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .. import _fds
from .._backend import KILL_GRACE, Backend, Runner, WorkerChannel
from .._linux import other_threads
from .._log_extra import log_extra
from .._monitor import Monitor
from .._plugins import Plugins
from .._signals import signal_name
from .._worker import AbstractWorker
from ._child import ChildOptions
from ._fork_server import ForkServer, ForkServerGone
from ._runners import pidfd
from ._worker import ProcessWorker, warn_spawn_instead

if TYPE_CHECKING:
    from .._server import Server

__all__ = ["ProcessBackend"]

logger = logging.getLogger("spoc")

STACK_FIRST_LIMIT = 0.3
"""Seconds a late child's stack is waited for before the deadline's SIGTERM goes anyway (a child whose Python
code cannot run does not answer); the answer takes milliseconds."""


class ProcessBackend(Backend):
    """Runs each `ProcessWorker` in a child process; see `_worker` for the start methods and `_fork_server`.

    In `prepare`, while the program is single-threaded, ``fork`` workers are
    forked directly; then the fork server is forked when a worker needs it now
    or workers may start later (under `run_forever`, or with a plugin active),
    and not otherwise (start latency: it costs 70% of a fork worker's start).
    It makes the ``spawn`` workers and the ``fork`` ones started later. With
    no clean snapshot to fork from, a ``fork`` worker is spawned instead, with
    a `SpocWarning` that says why.

    The server's monitor watches the fork server's pidfd: one that dies while
    the server runs is reaped and logged at once, and replaced by one started
    with ``spawn`` (see `_fork_server`); a launch that finds it gone first
    does the same, then retries once.
    """

    name = "process"
    worker_type = ProcessWorker

    def __init__(self, server: Server, plugins: Plugins, may_start_workers_later: Callable[[], bool]) -> None:
        self._server = server
        self._plugins = plugins
        self._may_start_workers_later = may_start_workers_later
        self._fork_server: ForkServer | None = None
        self._no_fork_server = (
            f"server {server.name!r} forked no fork server at start: no worker needed one then, and "
            f"none could start later (it had no plugin, and was not run by run_forever())"
        )
        self._spawned_instead: set[str] = set()
        self._forking_directly = False
        self._terminated: weakref.WeakSet[AbstractWorker] = weakref.WeakSet()  # sent SIGTERM past a deadline
        self._stop_began = time.monotonic()
        self._stopping = False
        self._lock = threading.Lock()  # the fork server's replacement against a launch
        self._monitor: Monitor[Any] | None = None
        self._sentinels: dict[int, int] = {}  # a fork server's pid: its pidfd, watched by the monitor

    def prepare(self, workers: Sequence[AbstractWorker], launch: Callable[[AbstractWorker], bool]) -> None:
        self._monitor = self._server._ensure_monitor()
        processes = [w for w in workers if isinstance(w, ProcessWorker)]
        threads = other_threads()
        if threads is not None:
            self._no_fork_server = (
                f"the program already ran {threads} when server {self._server.name!r} started, "
                f"so it could fork no fork server"
            )
            return
        self._forking_directly = True
        try:
            for worker in processes:
                if worker.start_method == "fork" and not launch(worker):
                    break
        finally:
            self._forking_directly = False
        if any(not w.started and w._needs_fork_server() for w in processes) or self._may_start_workers_later():
            fork_server = ForkServer({w.name: w for w in processes}, self._server.name)
            fork_server.start()
            self._adopt(fork_server)

    def _adopt(self, fork_server: ForkServer) -> None:
        """Make `fork_server` the one launches use, its death watched by the server's monitor."""
        self._fork_server = fork_server
        sentinel = pidfd(fork_server.pid)
        if sentinel is not None and self._monitor is not None:
            self._sentinels[fork_server.pid] = _fds.track(sentinel)
            self._monitor.watch(sentinel, functools.partial(self._replace, fork_server))

    def _unwatch(self, fork_server: ForkServer) -> None:
        sentinel = self._sentinels.pop(fork_server.pid, None)
        if sentinel is not None and self._monitor is not None:
            self._monitor.release(sentinel)

    def _replace(self, fork_server: ForkServer) -> None:
        """Reap `fork_server`, found dead, say so, and spawn its successor (unless the server is stopping, when
        it ends after its last child: `close` reaps it then)."""
        with self._lock:
            self._unwatch(fork_server)
            if fork_server is not self._fork_server or self._stopping:
                return
            self._fork_server = None
            exitcode = fork_server.close()
            how = "it was reaped elsewhere" if exitcode is None else _describe_exit(exitcode)
            successor = ForkServer({}, self._server.name)
            try:
                successor.spawn()
            except Exception as exc:
                self._no_fork_server = (
                    f"the fork server of server {self._server.name!r} died and no new one could be started "
                    f"({type(exc).__name__}: {exc})"
                )
                logger.error(
                    "server %r: its fork server (pid %d) died (%s), and no new one could be started (%s: %s): "
                    "process workers are started from the server itself from now on ('fork' ones with 'spawn')",
                    self._server.name,
                    fork_server.pid,
                    how,
                    type(exc).__name__,
                    exc,
                    extra=log_extra(server=self._server.name),
                )
                return
            logger.error(
                "server %r: its fork server (pid %d) died (%s); started a new one (pid %d) with 'spawn' (a plain "
                "fork of the server, which runs threads, is unsafe): process workers start and restart as before, "
                "each pickled to it",
                self._server.name,
                fork_server.pid,
                how,
                successor.pid,
                extra=log_extra(server=self._server.name),
            )
            self._adopt(successor)

    def launch(self, worker: AbstractWorker, channel: WorkerChannel) -> Runner:
        try:
            return self._launch(worker, channel)
        except ForkServerGone:  # it died a moment ago, and the monitor has not seen it yet
            with self._lock:
                fork_server = self._fork_server
            if fork_server is None:
                raise
            self._replace(fork_server)
            return self._launch(worker, channel)

    def _launch(self, worker: AbstractWorker, channel: WorkerChannel) -> Runner:
        assert isinstance(worker, ProcessWorker)
        method = worker.start_method
        fork_server = None
        if not self._forking_directly and worker._needs_fork_server():
            with self._lock:
                fork_server = self._fork_server
            if fork_server is None and method == "fork":
                method = self._spawn_instead(worker)
        stdio = tuple(channel.stdio().items())  # by fd number
        options = ChildOptions(
            orphan_timeout=self._server.shutdown_timeout,
            plugins=self._plugins.for_children,
            server_name=self._server.name,
            server_pid=os.getpid(),
            stdio=stdio,
        )
        try:
            link = worker._launch(fork_server, options, method)
        finally:
            _fds.close_quietly(fd for _, fd in stdio)  # the child has its copies (or was not started)
        link.watch(channel)
        return link.runner

    def _spawn_instead(self, worker: ProcessWorker) -> str:
        """``spawn`` for a ``fork`` worker that this server has no clean snapshot to fork from; warns once per name."""
        if worker.name not in self._spawned_instead:
            self._spawned_instead.add(worker.name)
            warn_spawn_instead(worker, self._no_fork_server)
        return "spawn"

    def stop(self, worker: AbstractWorker) -> None:
        assert isinstance(worker, ProcessWorker)
        worker._control_write(b"S")

    def terminate(self, worker: AbstractWorker) -> bool:
        assert isinstance(worker, ProcessWorker)
        asked = worker._stop_requested_at
        logger.warning(
            "worker %r (pid %s) did not stop within %.1fs: asking for its stack and sending SIGTERM",
            worker.name,
            worker.pid,
            time.monotonic() - (self._stop_began if asked is None else asked),
            extra=log_extra(worker.name, server=self._server.name),
        )
        self._terminated.add(worker)
        self._stack_then_sigterm(worker)
        return True

    def _stack_then_sigterm(self, worker: ProcessWorker) -> None:
        """Ask for `worker`'s stack, and send the SIGTERM once it has arrived, or `STACK_FIRST_LIMIT` later.

        The SIGTERM must not cut the answer off (correctness): a child that
        already had a SIGTERM (the group's stop, as systemd sends it) ends at
        once on a second one, before its control thread sends the stack it
        was asked for, and its stack was lost in most runs. The stack arrives
        on the monitor thread, where the SIGTERM then follows at once.
        """
        lock = threading.Lock()
        sent = False

        def sigterm() -> None:
            nonlocal sent
            with lock:
                if sent:
                    return
                sent = True
            worker.terminate()

        run = worker._run
        if self._monitor is None or not worker.is_alive():
            worker.dump_stack()
            worker.terminate()
            return
        run.after_stack = sigterm  # before the request: its answer may come at once
        worker.dump_stack()
        self._monitor.call_later(STACK_FIRST_LIMIT, sigterm)

    def kill(self, worker: AbstractWorker) -> bool:
        assert isinstance(worker, ProcessWorker)
        if worker not in self._terminated:
            if self._stopping:  # else whoever asked (`Server.kill_worker`: a watchdog) has said why
                logger.error(
                    "worker %r (pid %s): shutdown forced, sending SIGKILL",
                    worker.name,
                    worker.pid,
                    extra=log_extra(worker.name, server=self._server.name),
                )
        elif worker._run.stop_signal == "SIGTERM":
            logger.error(
                "worker %r (pid %s) handled SIGTERM but did not end within %gs (its teardown is slow or stuck): "
                "sending SIGKILL",
                worker.name,
                worker.pid,
                KILL_GRACE,
                extra=log_extra(worker.name, server=self._server.name),
            )
        else:
            logger.error(
                "worker %r (pid %s) did not react to SIGTERM within %gs: it ignores SIGTERM, or its Python code "
                "cannot run (native code holding the GIL, a blocking C call); sending SIGKILL",
                worker.name,
                worker.pid,
                KILL_GRACE,
                extra=log_extra(worker.name, server=self._server.name),
            )
        worker.kill()
        return True

    def stopping(self) -> None:
        self._stop_began = time.monotonic()  # for the message of a worker that did not stop in time
        with self._lock:
            self._stopping = True
        # Stop time: the fork server ends as soon as its last child has (at once, with none), while the workers
        # stop, instead of after them in close(), which waited 1.5-2 ms for its exit.
        if self._fork_server is not None:
            self._fork_server.hang_up()

    def close(self) -> None:
        with self._lock:
            fork_server, self._fork_server = self._fork_server, None
            if fork_server is not None:
                self._unwatch(fork_server)
        if fork_server is not None:
            fork_server.close()


def _describe_exit(exitcode: int) -> str:
    if exitcode < 0:
        return f"killed by {signal_name(-exitcode)}"
    return f"exit code {exitcode}"
