"""ProcessWorker and its start methods.

- ``"fork"`` (Linux's default): forked directly while the program is
  single-threaded (at `Server.start()`, or on its own), else by the server's
  fork server; never from a program that runs threads (multiprocessing's
  queue feeders aside): with no clean snapshot it is spawned instead, with a
  `SpocWarning` that says why (`warn_spawn_instead`).
- ``"spawn"`` and ``"forkserver"``: multiprocessing's, the worker pickled to a
  fresh interpreter (scripts need the ``__main__`` guard); under a Server
  born with Ctrl+C ignored, from the fork server or a forkserver with spoc's
  preload (`_forkserver_preload`).

The child is made by `_start` and runs `_child.run_child`; its pipes' parent
ends are the worker's `ChildLink`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from .. import _fds
from .._aio import uvloop_enabled
from .._backend import WorkerChannel
from .._errors import SpocWarning, ThreadOnlyObjectWarning, WorkerStartError, stacklevel_outside_spoc
from .._linux import other_threads, preload_for_children
from .._log_extra import log_extra
from .._poll import Poller
from .._signals import CONTROL_SIGNAL, blocked
from .._worker import AbstractWorker, check_own_backend
from ._child import ChildOptions
from ._fork_server import ForkServer
from ._link import ChildLink
from ._runners import ChildRunner, DirectChild, MultiprocessingChild, pidfds_work
from ._start import fork_child, start_with_multiprocessing
from ._transfer import find_thread_only, find_unpicklable, pickle_for_child, thread_only_advice

__all__ = ["START_METHODS", "ProcessWorker", "default_start_method", "warn_spawn_instead"]

logger = logging.getLogger("spoc")

START_METHODS = ("fork", "forkserver", "spawn")


def default_start_method() -> str:
    """spoc's own default, whatever the interpreter's: ``fork`` on Linux, ``spawn`` elsewhere.

    Python 3.14 made ``forkserver`` the default on Linux; spoc keeps ``fork``
    there so that scripts without a ``__main__`` guard keep working, and makes
    it safe with its fork server. ``SPOC_START_METHOD`` overrides it.
    """
    chosen = os.environ.get("SPOC_START_METHOD", "").strip()
    if chosen:
        return chosen
    return "fork" if sys.platform.startswith("linux") else "spawn"


def warn_spawn_instead(worker: ProcessWorker, why: str) -> None:
    """Warn, at the user's line, that the ``fork`` `worker` is started with ``spawn`` because `why`."""
    warnings.warn(
        f"worker {worker.name!r} (start_method='fork') is started with 'spawn' instead: {why}. Forking a "
        f"program that runs threads copies only the forking thread, and a lock another thread holds at that "
        f"instant stays held forever in the child. To have it forked, start its Server before the program "
        f"starts any thread (it forks its fork server then when it will start workers later: under "
        f"run_forever(), or with a plugin active); "
        f"to silence this warning, set start_method='spawn' on the worker.",
        SpocWarning,
        stacklevel=stacklevel_outside_spoc(),
    )


_FORKSERVER_PRELOAD = "spoc._process._forkserver_preload"


def forkserver_children_are_safe() -> bool:
    """Whether multiprocessing's fork server makes children born with the shutdown signals ignored.

    True when it runs, or will start, with spoc's preload module (spoc adds it
    when the fork server has not started yet). A fork server someone else
    started first is left alone, and spoc's own fork server launches the
    children instead.
    """
    import multiprocessing.forkserver as mp_forkserver

    forkserver = getattr(mp_forkserver, "_forkserver", None)
    preload = getattr(forkserver, "_preload_modules", None)
    if not isinstance(preload, list) or not hasattr(forkserver, "_forkserver_address"):
        return False
    if _FORKSERVER_PRELOAD in preload:
        return True
    if forkserver._forkserver_address is not None:  # type: ignore[union-attr]
        return False
    mp_forkserver.set_forkserver_preload([*preload, _FORKSERVER_PRELOAD])
    return True


class ProcessWorker(AbstractWorker):
    """A worker that lives in its own child process: for CPU-bound work and isolation.

    Args:
        name: the worker's name, unique within its server.
        daemon: when True (the default) the program may exit without waiting
            for this worker (which then stops by itself, as it does whenever its
            parent dies); when False, interpreter exit waits for it.
        start_method: ``"fork"``, ``"forkserver"`` or ``"spawn"``; None picks
            spoc's default (`default_start_method`).
        plugin_options: settings for plugins (`AbstractWorker.plugin_options`), such as the
            restart plugin's ``restart_policy``, and ``backend`` to run this worker on
            another backend (``{"backend": "ray"}``).
        replicas: how many copies of it a server runs (`AbstractWorker.replicas`; default: the class
            attribute, 1).

    In the parent this object stands for the child: `exitcode`, `error` (the
    child's `ErrorRecord`, traceback included) and `exit_info` are filled in
    from what the child reports.
    """

    backend: str = "process"
    """The backend that runs it: ``"process"``, or another a plugin registers (set it on a subclass, or
    give ``plugin_options={"backend": ...}``)."""
    _RUNTIME_ATTRS = AbstractWorker._RUNTIME_ATTRS | {"_link"}

    start_method: str

    def __init__(
        self,
        name: str,
        daemon: bool = True,
        start_method: str | None = None,
        *,
        plugin_options: Mapping[str, Any] | None = None,
        replicas: int | None = None,
    ) -> None:
        super().__init__(name, daemon=daemon, plugin_options=plugin_options, replicas=replicas)
        method = start_method or default_start_method()
        if method not in START_METHODS or method not in multiprocessing.get_all_start_methods():
            available = [m for m in START_METHODS if m in multiprocessing.get_all_start_methods()]
            raise ValueError(
                f"{type(self).__name__} {name!r}: start_method {method!r} is not available here; "
                f"use one of {available} or None for spoc's default"
            )
        self.start_method = method

    def _init_runtime(self) -> None:
        super()._init_runtime()
        self._link: ChildLink | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid once started (None on a backend whose runner has no ``pid``)."""
        return getattr(self._run.runner, "pid", None)

    # ------------------------------------------------------------------ starting

    def start(self) -> None:
        """Start the child process on its own, outside a Server.

        A ``fork`` worker started while the program runs other threads is
        started with ``spawn`` instead, with a `SpocWarning` that says why.
        """
        check_own_backend(self, "process")
        method = self.start_method
        threads = other_threads() if method == "fork" else None
        if threads is not None:
            warn_spawn_instead(self, f"the program runs {threads}")
            method = "spawn"
        self._launch(fork_server=None, options=ChildOptions(), method=method)

    def _launch(self, fork_server: ForkServer | None, options: ChildOptions, method: str) -> ChildLink:
        """Start the child with start `method`, through `fork_server` when one is given and needed.

        `options` are as the server set them.
        """
        self._check_startable()
        self._warn_thread_only_objects()
        # Start latency: work each forked child would otherwise do again, in copy-on-write faults (a child's
        # startup event came 23% later without these two lines).
        preload_for_children()
        _ = self.is_async
        control_r, control_w = multiprocessing.Pipe(duplex=False)
        events_r, events_w = multiprocessing.Pipe(duplex=False)
        # Tracked before the fork, so that a directly forked child closes the parent's ends.
        _fds.track(events_r.fileno())
        _fds.track(control_w.fileno())
        on_main = threading.current_thread() is threading.main_thread()
        try:
            with blocked(), self._reporting_unpicklable(method):
                if fork_server is not None and self._needs_fork_server():
                    runner: ChildRunner = self._start_with_fork_server(fork_server, control_r, events_w, options)
                else:
                    runner = self._start_here(method, control_r, events_w, on_main, options)
        except BaseException:
            _fds.untrack(events_r.fileno())
            _fds.untrack(control_w.fileno())
            for conn in (control_r, control_w, events_r, events_w):
                conn.close()
            raise
        control_r.close()
        events_w.close()
        self._run.runner = runner
        self._link = link = ChildLink(self.name, control_w, events_r, runner)
        if not self.daemon:
            _join_at_exit(self)
        if self._stop_requested:
            self._request_stop()
        return link

    def _needs_fork_server(self) -> bool:
        """Whether a server must have its fork server make this worker's child (see `_fork_server`)."""
        return self.start_method != "forkserver" or not forkserver_children_are_safe()

    def _start_with_fork_server(
        self, fork_server: ForkServer, control_r: Connection, events_w: Connection, options: ChildOptions
    ) -> ChildRunner:
        """Have the server's fork server make the child: it is born with the shutdown signals ignored."""
        method = self.start_method
        if method != "fork" and fork_server.holds(self):
            # The fork server pickles it to the fresh interpreter: fail here instead, naming the attribute.
            # (A worker the fork server does not hold is pickled here by launch() anyway.)
            pickle_for_child(self)
        options = replace(
            options,
            use_uvloop=uvloop_enabled(),
            parent_death_signal=True,
            expected_parent=fork_server.pid if method != "forkserver" else 0,
        )
        return fork_server.launch(self, method, control_r.fileno(), events_w.fileno(), options)

    def _start_here(
        self, method: str, control_r: Connection, events_w: Connection, on_main: bool, options: ChildOptions
    ) -> ChildRunner:
        """Start the child from this process: forked directly, or by multiprocessing (spawn, forkserver).

        A directly forked child's sentinel is its pidfd; on kernels without
        pidfds, the read end of a pipe whose write end only the child keeps.
        """
        options = replace(
            options,
            use_uvloop=uvloop_enabled(),
            parent_death_signal=on_main or method == "forkserver",
            expected_parent=os.getpid() if method != "forkserver" else 0,
        )
        control_fd, event_fd = control_r.fileno(), events_w.fileno()
        if method != "fork":
            return MultiprocessingChild(start_with_multiprocessing(method, self, control_fd, event_fd, options))
        pipe = None if pidfds_work() else os.pipe()
        if pipe is not None:
            _fds.track(pipe[0])
        try:
            keep = frozenset() if pipe is None else frozenset({pipe[1]})
            pid = fork_child(self.name, lambda: self, control_fd, event_fd, options, keep)
        except BaseException:
            if pipe is not None:
                _fds.untrack(pipe[0])
                os.close(pipe[0])
            raise
        finally:
            if pipe is not None:
                os.close(pipe[1])
        # Our unreaped child: its pid is not reused, so its pidfd is its own.
        return DirectChild(pid, pipe[0] if pipe is not None else _fds.track(os.pidfd_open(pid)))

    @contextlib.contextmanager
    def _reporting_unpicklable(self, method: str) -> Iterator[None]:
        """Turn a pickling failure while sending this worker to its child (by `method`) into a WorkerStartError."""
        try:
            yield
        except WorkerStartError:
            raise
        except (pickle.PicklingError, TypeError, AttributeError, RuntimeError) as exc:
            raise self._unpicklable_error(exc, method) from exc

    def _unpicklable_error(self, exc: BaseException, method: str) -> WorkerStartError:
        found = find_unpicklable(self)
        where, why = found if found is not None else ("self", f"{type(exc).__name__}: {exc}")
        hint = ""
        for path, kind in find_thread_only(self):
            if where.startswith(path):
                hint = (
                    f" It is a {kind.__module__}.{kind.__qualname__}, which only works between threads:"
                    f" use {thread_only_advice(kind)}."
                )
        if self.start_method != method:
            advice = "Create such objects in setup(), which runs in the child (see the warning above for the spawn)."
        elif method == "fork":
            advice = (
                "Add it before Server.start(), so the fork server inherits it unpickled, "
                "or create such objects in setup()."
            )
        else:
            advice = "Create such objects in setup(), which runs in the child, or use start_method='fork'."
        started_as = "" if self.start_method == method else f", started with {method!r}"
        return WorkerStartError(
            f"{type(self).__name__} {self.name!r} cannot be sent to its child process "
            f"(start_method={self.start_method!r}{started_as}): {where} does not pickle ({why}).{hint} {advice}"
        )

    def _warn_thread_only_objects(self) -> None:
        for path, kind in find_thread_only(self):
            warnings.warn(
                f"{type(self).__name__} {self.name!r} holds a {kind.__module__}.{kind.__qualname__} "
                f"in {path}: the child process gets its own copy and nothing crosses between the "
                f"copies. Use {thread_only_advice(kind)} (or a multiprocessing.Manager() proxy) instead.",
                ThreadOnlyObjectWarning,
                stacklevel=stacklevel_outside_spoc(),
            )

    # ------------------------------------------------------------------ stopping and signals

    def _request_stop(self) -> None:
        if self._run.channel is None:  # started on its own, outside a server: down its child's control pipe
            self._control_write(b"S")
        else:  # under a server, its backend carries it (`Backend.stop`)
            super()._request_stop()

    def _control_write(self, request: bytes) -> None:
        """Write `request` to the child's control pipe and make it read it now (`CONTROL_SIGNAL`). A child whose
        worker closed the pipe is stopped with SIGTERM instead; its stacks can no longer be asked for."""
        link = self._link
        if link is None:
            return
        sent = link.request(request)
        if sent:
            self.send_signal(CONTROL_SIGNAL)
        if request == b"S" and link.pipes_closed:
            link.stop_by_sigterm()
        if not sent and link.pipes_closed and request == b"D":
            logger.warning(
                "worker %r: its stacks cannot be asked for: it closed the pipes the server gave its process",
                self.name,
                extra=log_extra(self.name),
            )

    def send_signal(self, signum: int) -> None:
        """Send `signum` to the child process, if it is still running (never to a reused pid)."""
        runner = self._run.runner
        if runner is not None:
            runner.send_signal(signum)

    def terminate(self) -> None:
        """SIGTERM the child: a first one asks for a graceful stop, a second ends it at once."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the child: it ends at once, without teardown."""
        self.send_signal(signal.SIGKILL)

    def dump_stack(self) -> None:
        """Ask the child for the stacks of its threads and tasks; the answer is logged when it arrives.

        The child's control thread formats them and sends them back as a
        ``"stack"`` event, which the server (or `join()` outside a server) logs
        through the ``spoc`` logger, whole, headed by the worker's name and
        pid. A child whose Python code cannot run (native code holding the
        GIL) does not answer.
        """
        self._run.stack_pending = True
        self._control_write(b"D")

    # ------------------------------------------------------------------ state and waiting

    def is_alive(self) -> bool:
        runner = self._run.runner
        return runner is not None and runner.is_alive()

    @property
    def exitcode(self) -> int | None:
        runner = self._run.runner
        return runner.exitcode if runner is not None else None

    def join(self, timeout: float | None = None) -> None:
        """Wait for the child to end, reading its events meanwhile; then release its fds."""
        if self._run.runner is None:
            raise WorkerStartError(f"worker {self.name!r} cannot be joined before it is started")
        if self._run.channel is not None:  # a server's monitor reads this worker
            self._run.finished.wait(timeout)
            return
        link = self._link
        if link is None or self.exit_info is not None:
            return
        poller = Poller()
        link.watch(WorkerChannel(self, self._run.receive, watch=poller.watch, unwatch=poller.unwatch))
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.exit_info is None:
            poller.poll(None if deadline is None else deadline - time.monotonic())
            if deadline is not None and time.monotonic() >= deadline:
                return


_non_daemon: weakref.WeakSet[ProcessWorker] = weakref.WeakSet()


def _join_at_exit(worker: ProcessWorker) -> None:
    if not _non_daemon:
        atexit.unregister(_join_non_daemon_workers)
        atexit.register(_join_non_daemon_workers)
    _non_daemon.add(worker)


def _join_non_daemon_workers() -> None:
    """At interpreter exit, wait for process workers started with daemon=False, as multiprocessing does."""
    for worker in list(_non_daemon):
        if worker.is_alive():
            worker.join()
