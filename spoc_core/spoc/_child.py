"""The life of a process worker inside its child process.

Whatever start method made the child, it arrives here with its worker, the
read end of its control pipe and the write end of its event pipe. Here it:

- takes over its signals: SIGINT is ignored (Ctrl+C reaches the whole process
  group; the parent decides), a first SIGTERM asks for a graceful stop and a
  second one ends the process, SIGHUP means "parent gone", and SIGUSR2 dumps
  every thread's stack to stderr (faulthandler);
- watches its parent: EOF on the control pipe, or the parent-death signal,
  stops the worker, and if the worker has not ended within the orphan timeout
  the process dumps its stacks and exits, so no worker outlives its server;
- runs the lifecycle body and sends every event to the parent, in order.
"""

from __future__ import annotations

import _thread
import faulthandler
import multiprocessing
import multiprocessing.connection
import os
import select
import signal
import sys
import threading
from dataclasses import dataclass, replace
from types import FrameType

from . import _fds
from ._events import WorkerEvent, encode_event
from ._fork import flush_std_streams
from ._latch import Latch
from ._linux import set_parent_death_signal
from ._plugins import ChildPlugin, call_in_child
from ._signals import CHILD_SIGNALS, STACK_DUMP_SIGNAL, set_handler, unblock
from ._worker import AbstractWorker, LifecycleBody, set_process_worker

__all__ = ["ChildOptions", "EventWriter", "run_child"]

ORPHAN_EXIT_CODE = 70


@dataclass(frozen=True)
class ChildOptions:
    """What the parent tells a child about how to run.

    Attributes:
        use_uvloop: run an async worker's loop on uvloop.
        parent_death_signal: whether PR_SET_PDEATHSIG is reliable for this
            child (it was forked by a thread that lives as long as its parent).
        expected_parent: the pid the child's parent must have right after the
            fork, or 0 when the child is not the parent's direct child.
        orphan_timeout: seconds an orphaned worker gets to finish its teardown.
        plugins: the server's plugins that implement ``child_starting`` or ``child_stopping``.
        server_name: the name of the server that started the worker.
    """

    use_uvloop: bool = False
    parent_death_signal: bool = False
    expected_parent: int = 0
    orphan_timeout: float = 5.0
    plugins: tuple[ChildPlugin, ...] = ()
    server_name: str = ""

    @property
    def told_of_parent_death_by_signal(self) -> bool:
        """Whether the death of the process that supervises this child reaches it as a signal.

        True when the parent-death signal is armed and the parent is the
        server or its fork server (which dies with it); not under
        multiprocessing's fork server, which may outlive the server.
        """
        return self.parent_death_signal and self.expected_parent != 0


class EventWriter:
    """Sends a child's events to the parent over its event pipe, one whole record at a time."""

    def __init__(self, fd: int) -> None:
        self._conn = multiprocessing.connection.Connection(fd, readable=False)
        self._lock = threading.Lock()
        self._parent_gone = False

    def send(self, event: WorkerEvent) -> None:
        if event.error is not None:
            event = replace(event, error=event.error.portable())
        data = encode_event(event)
        with self._lock:
            if self._parent_gone:
                return
            try:
                self._conn.send_bytes(data)
            except (BrokenPipeError, ConnectionResetError):
                self._parent_gone = True  # no one is left to tell; the orphan watch ends us

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _ParentWatch:
    """A small thread that carries stop requests and the parent's death to the worker."""

    def __init__(self, worker: AbstractWorker, control_fd: int, options: ChildOptions) -> None:
        self.worker = worker
        self.control_fd = control_fd
        self.options = options
        self.signal_r, self.signal_w = os.pipe()
        os.set_blocking(self.signal_w, False)
        self.finished = Latch()
        self.sigterms = 0
        self.started = False

    def start(self) -> None:
        """Start watching (once), on a bare thread: nothing waits for it to come up."""
        if not self.started:
            self.started = True
            _thread.start_new_thread(self._watch, ())

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """A first SIGTERM asks for a graceful stop; a second one ends the process.

        SIGTERMs are counted, not stop requests: under systemd's control-group
        kill the parent and the child get SIGTERM together, and the parent's
        stop request may arrive first. That must not make the child's own
        SIGTERM count as a second one.
        """
        self.sigterms += 1
        if self.sigterms > 1:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        self._poke(b"T")

    def on_sighup(self, signum: int, frame: FrameType | None) -> None:
        self._poke(b"H")

    def _poke(self, what: bytes) -> None:
        self.start()
        try:
            os.write(self.signal_w, what)
        except OSError:
            pass

    def _watch(self) -> None:
        poller = select.poll()
        poller.register(self.control_fd, select.POLLIN)
        poller.register(self.signal_r, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                data = os.read(fd, 256)
                if fd == self.control_fd and not data:
                    return self._orphaned()
                if b"H" in data:
                    return self._orphaned()
                if data:
                    self.worker.stop()

    def _orphaned(self) -> None:
        self.worker.stop()
        if not self.finished.wait(self.options.orphan_timeout):
            print(
                f"spoc: worker {self.worker.name!r} (pid {os.getpid()}) lost its parent and did not "
                f"stop within {self.options.orphan_timeout:g}s; its stacks:",
                file=sys.stderr,
                flush=True,
            )
            faulthandler.dump_traceback(all_threads=True)
            os._exit(ORPHAN_EXIT_CODE)


def run_child(worker: AbstractWorker, control_fd: int, event_fd: int, options: ChildOptions) -> int:
    """Run `worker` in this (child) process; return its exit code.

    Called with the child signals blocked or ignored (see `_signals.blocked`).

    The watch thread starts once the first event is sent, when the parent's
    death reaches the child as a signal until then: its handler starts the
    thread at once. A thread started before the "startup" event would compete
    with it for the GIL and a core, and delay it by a quarter of a fork's
    whole start-up time.
    """
    worker._init_runtime()
    multiprocessing.current_process().name = f"spoc:{worker.name}"  # logging's processName
    watch = _ParentWatch(worker, control_fd, options)
    set_handler(signal.SIGINT, signal.SIG_IGN)
    set_handler(signal.SIGTERM, watch.on_sigterm)
    set_handler(signal.SIGHUP, watch.on_sighup)
    if sys.stderr is not None:
        try:
            faulthandler.register(STACK_DUMP_SIGNAL, file=sys.stderr, all_threads=True)
        except (AttributeError, ValueError, OSError):  # no usable stderr fd
            set_handler(STACK_DUMP_SIGNAL, signal.SIG_IGN)
    unblock(CHILD_SIGNALS)
    if options.parent_death_signal:
        set_parent_death_signal(signal.SIGHUP)
    if options.expected_parent and os.getppid() != options.expected_parent:
        watch.on_sighup(signal.SIGHUP, None)  # the parent died before we could watch it
    if not options.told_of_parent_death_by_signal:
        watch.start()  # EOF on the control pipe is then the only news of the parent's death
    writer = EventWriter(event_fd)

    def emit(event: WorkerEvent) -> None:
        writer.send(event)
        watch.start()

    set_process_worker(worker)
    try:
        if not options.plugins:
            return LifecycleBody(worker, emit).run(options.use_uvloop)

        def call_plugins(hook: str) -> None:
            call_in_child(options.server_name, options.plugins, hook, worker=worker, server_name=options.server_name)

        worker._emit = emit
        call_plugins("child_starting")
        return LifecycleBody(worker, emit, last_words=lambda: call_plugins("child_stopping")).run(options.use_uvloop)
    finally:
        watch.finished.set()
        writer.close()
        flush_std_streams()


def reset_after_fork(keep: frozenset[int]) -> None:
    """In a child forked by spoc: drop the parent's supervising fds and multiprocessing bookkeeping."""
    _fds.close_all_tracked(keep)
    import multiprocessing.process as mp_process
    import multiprocessing.util as mp_util

    children = getattr(mp_process, "_children", None)
    if isinstance(children, set):
        children.clear()
    registry = getattr(mp_util, "_finalizer_registry", None)
    if isinstance(registry, dict):
        registry.clear()
    run_after_forkers = getattr(mp_util, "_run_after_forkers", None)
    if callable(run_after_forkers):
        run_after_forkers()


def process_entry(
    worker: AbstractWorker,
    control: multiprocessing.connection.Connection,
    events: multiprocessing.connection.Connection,
    options: ChildOptions,
) -> None:
    """Target of the multiprocessing.Process that runs a worker (spawn, forkserver)."""
    code = run_child(worker, control.fileno(), events.fileno(), options)
    if code:
        sys.exit(code)
