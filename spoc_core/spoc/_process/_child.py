"""The life of a process worker inside its child process, whatever start method made it.

- Signals: SIGINT is ignored (the parent decides); SIGHUP and SIGUSR1 too,
  unless the worker installs a handler; a first SIGTERM stops the worker
  gracefully, a second ends the process (one within `REPEAT_WINDOW` of the
  first is the same stop, sent to the pid and then the group). A SIGTERM the server did not send
  is reported as such, and the child ends by it after its teardown.
- Requests come over the control pipe (``S`` stop, ``D`` stacks), with
  `CONTROL_SIGNAL` to read them now; EOF there, or the parent-death signal,
  means the parent is gone: the worker stops, and the process exits with its
  stacks dumped if it has not ended within the orphan timeout.
- The lifecycle body runs, and every event goes to the parent, in order.
- The worker may close the pipes spoc gave it (``os.closerange()`` in a
  daemon-style library): its body still runs to its end, teardown included,
  what it could not send is dropped (an error printed on its stderr
  instead), and its exit code tells the server (`CLOSED_PIPES_EXIT`).
"""

from __future__ import annotations

import _thread
import errno
import faulthandler
import functools
import multiprocessing
import multiprocessing.connection
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any

from .. import _fds
from .._deadlines import wait_time
from .._events import WorkerEvent, encode_event, make_event
from .._hosted import live_as_child
from .._latch import Latch, SignalWake
from .._linux import set_parent_death_signal, set_process_title
from .._plugins import ChildPlugins
from .._poll import Poller
from .._signals import ALL_SIGNALS, CHILD_SIGNALS, CONTROL_SIGNAL, REPEAT_WINDOW, blocked
from .._stacks import format_stacks
from .._worker import AbstractWorker

__all__ = ["ChildOptions", "EventWriter", "run_child"]

ORPHAN_EXIT_CODE = 70
CLOSED_PIPES_EXIT = 74
"""The worker closed its pipes to the server (``os.closerange()``) and its body then ended without error,
its teardown run (also when a SIGTERM stopped it: the server can stop it no other way then)."""
CLOSED_PIPES_FAILED_EXIT = 75
"""The worker closed its pipes to the server, and a phase of its body failed (its traceback on its stderr)."""


@dataclass(frozen=True)
class ChildOptions:
    """What the parent tells a child about how to run.

    ``parent_death_signal``: PR_SET_PDEATHSIG is reliable (the forking thread
    lives as long as the parent); ``expected_parent``: the pid the parent must
    have right after the fork (0: not a direct child); ``orphan_timeout``: the
    seconds an orphan gets to finish; ``plugins``: those with child hooks;
    ``server_name``, ``server_pid``: the server's, for them; ``stdio``: (fd
    number, fd) pairs the plugins' `worker_stdio` gave, each installed at its
    number (1, 2) before anything of the worker runs.
    """

    use_uvloop: bool = False
    parent_death_signal: bool = False
    expected_parent: int = 0
    orphan_timeout: float = 5.0
    plugins: ChildPlugins = field(default_factory=lambda: ChildPlugins("", ()))
    server_name: str = ""
    server_pid: int = 0
    stdio: tuple[tuple[int, int], ...] = ()

    @property
    def told_of_parent_death_by_signal(self) -> bool:
        """Whether the supervisor's death reaches this child as a signal: armed, and the parent is the server
        or its fork server (not multiprocessing's, which may outlive the server)."""
        return self.parent_death_signal and self.expected_parent != 0


class EventWriter:
    """Sends a child's events to the parent over its event pipe, one whole record at a time.

    Framed as `multiprocessing.connection.Connection` frames a message (the
    parent reads the pipe with one). Once the worker has closed the pipe
    (`OwnFd`: ``os.closerange()`` in a daemon-style library), events are
    dropped, an error's traceback printed on stderr instead, and
    `pipe_closed` says so (the child's exit code then tells the parent,
    `CLOSED_PIPES_EXIT`).
    """

    def __init__(self, fd: int) -> None:
        self._pipe = _fds.OwnFd(fd)
        self._lock = threading.Lock()
        self._parent_gone = False
        self.pipe_closed = False

    def send(self, event: WorkerEvent) -> None:
        data = encode_event(event)
        with self._lock:
            if self._parent_gone:
                return
            if not self.pipe_closed and self._pipe.still_ours():
                try:
                    _write_all(self._pipe.fd, _framed(data))
                    return
                except (BrokenPipeError, ConnectionResetError):
                    self._parent_gone = True  # no one is left to tell; the orphan watch ends us
                    return
                except OSError:  # closed between the check and the write
                    pass
            self.pipe_closed = True
        if event.error is not None:  # not lost: the worker's stderr is still its own
            print(
                f"spoc: worker {event.worker!r} (pid {event.pid}) failed in {event.phase}, and cannot tell its "
                f"server: it closed its pipe to the server\n{event.error.traceback.rstrip()}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        with self._lock:
            if not self.pipe_closed and self._pipe.still_ours():
                os.close(self._pipe.fd)


def _framed(data: bytes) -> bytes:
    """`data` behind the header `multiprocessing.connection.Connection.recv_bytes` reads."""
    size = len(data)
    return (struct.pack("!i", size) if size <= 0x7FFFFFFF else struct.pack("!iQ", -1, size)) + data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Control:
    """A small thread that carries the server's requests, outside signals and the parent's death to the worker.

    Signal handlers only write a byte to its pipe (``T`` SIGTERM, ``H`` the
    parent died before we watched it) or start it; the thread acts.

    The worker may close these pipes under us (``os.closerange()`` in a
    daemon-style library): the thread then stops watching what was closed,
    and ends when nothing is left; a signal handler whose byte has no pipe
    to go to starts a thread of its own to act; `pipes_closed` says so. With
    the control pipe closed, the server stops the worker with SIGTERM, and
    the parent-death signal (when armed) is the only news of its death.
    """

    def __init__(self, worker: AbstractWorker, control_fd: int, options: ChildOptions) -> None:
        self.worker = worker
        self.control = _fds.OwnFd(control_fd)
        self.options = options
        signal_r, signal_w = os.pipe()
        os.set_blocking(signal_w, False)
        self.signal_r, self.signal_w = _fds.OwnFd(signal_r), _fds.OwnFd(signal_w)
        self.finished = Latch()
        self.lock = threading.Lock()
        self.sigterms = 0
        self.first_sigterm_at = 0.0  # monotonic
        self.parent_asked = False
        """The server asked the worker to stop (``S`` on the control pipe)."""
        self.outside_signal: int | None = None
        """A SIGTERM that made the worker stop without the server asking first."""
        self.started = False
        self.orphaned = False
        """The parent is gone (EOF on the control pipe, or ``H``): the worker stops, and must end in time."""
        self.control_closed = False
        self.signal_pipe_closed = False

    @property
    def pipes_closed(self) -> bool:
        """The worker closed the control pipe or the signal pipe."""
        return self.control_closed or self.signal_pipe_closed

    def start(self) -> None:
        """Start watching (once), on a bare thread (correctness: this runs from signal handlers, where
        `threading.Thread.start` could wait on a lock the interrupted main thread holds)."""
        if not self.started:
            self.started = True
            _start_bare_thread(self._watch)

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """A first SIGTERM asks for a graceful stop; a second one ends the process. SIGTERMs are counted, not
        stop requests: under a control-group kill the server's stop request may arrive before the child's own.
        Another one within `REPEAT_WINDOW` of the first is the same stop, sent to the pid and the group (as
        ``timeout`` does), not a second one."""
        now = time.monotonic()
        if self.sigterms and now - self.first_sigterm_at < REPEAT_WINDOW:
            return
        self.sigterms += 1
        if self.sigterms > 1:
            die_by_signal(signal.SIGTERM)
        self.first_sigterm_at = now
        self._poke(b"T")

    def on_control_signal(self, signum: int, frame: FrameType | None) -> None:
        """The server wrote a request, or the parent died (the control pipe then reads EOF): read it. With the
        control pipe closed by the worker, the server writes no request: the signal is the parent's death."""
        if not self.control_closed:
            self.start()
        elif self._parent_gone():
            self._poke(b"H")

    def _parent_gone(self) -> bool:
        """Whether our parent (the server or its fork server) has died: we have another one."""
        return bool(self.options.expected_parent) and os.getppid() != self.options.expected_parent

    def _poke(self, what: bytes) -> None:
        self.start()
        if not self.signal_pipe_closed and self.signal_w.still_ours():
            try:
                os.write(self.signal_w.fd, what)
                return
            except BlockingIOError:  # full: the thread is woken anyway
                return
            except OSError:  # its read end is closed: no thread will read it
                pass
        self.signal_pipe_closed = True
        _stop_waking_on_signals()
        _start_bare_thread(self._act_alone, what)

    def _watch(self) -> None:
        poller = Poller()
        watched = {self.control: self._on_control, self.signal_r: self._on_signal}
        for pipe, on_readable in watched.items():
            poller.watch(pipe.fd, functools.partial(self._read, poller, pipe, on_readable))
        while not self.orphaned and not (self.control_closed and self.signal_pipe_closed):
            poller.poll()
        if self.orphaned:
            self._orphaned()

    def _read(self, poller: Poller, pipe: _fds.OwnFd, on_data: Callable[[bytes], None]) -> None:
        """Read what `pipe` holds for `on_data`; a pipe the worker closed is no longer watched."""
        try:
            data = os.read(pipe.fd, 256) if pipe.still_ours() else None
        except OSError:
            data = None
        if data is None:
            poller.unwatch(pipe.fd)
            if pipe is self.control:
                # Correctness: the parent-death signal may have come before this (and found the pipe open);
                # if the parent is gone by now, it was its death that woke us.
                self.control_closed = True
                self.orphaned = self.orphaned or self._parent_gone()
            else:
                self.signal_pipe_closed = True
            return
        on_data(data)

    def _on_signal(self, data: bytes) -> None:
        if b"H" in data:
            self.orphaned = True
        elif b"T" in data:
            with self.lock:  # the verdict and its event stand together, or not at all once the body ended
                if self.finished.is_set():
                    return
                if not self.parent_asked:
                    self.outside_signal = signal.SIGTERM
                self.worker._stop_on(signal.SIGTERM)

    def _act_alone(self, data: bytes) -> None:
        """Act on a signal's byte on this thread, the signal pipe being closed."""
        self._on_signal(data)
        if self.orphaned:
            self._orphaned()

    def _on_control(self, data: bytes) -> None:
        if not data:
            self.orphaned = True
        if b"S" in data:
            with self.lock:
                self.parent_asked = True
                self.outside_signal = None
            self.worker.stop()
        if b"D" in data:
            worker = self.worker
            send = worker._send
            if send is not None:
                send(make_event(worker.name, "stack", stack=format_stacks(loop=worker.running_loop)))

    def _orphaned(self) -> None:
        self.worker.stop()
        if not self.finished.wait(wait_time(self.options.orphan_timeout)):
            print(
                f"spoc: worker {self.worker.name!r} (pid {os.getpid()}) lost its parent and did not "
                f"stop within {self.options.orphan_timeout:g}s; its stacks:",
                file=sys.stderr,
                flush=True,
            )
            faulthandler.dump_traceback(all_threads=True)
            os._exit(ORPHAN_EXIT_CODE)


def _start_bare_thread(function: Callable[..., None], *args: object) -> None:
    """Start `function(*args)` on a thread with every signal blocked (signals go to the main thread, where
    Python runs the worker's handlers); a bare one, as a signal handler may start it."""
    with blocked(ALL_SIGNALS):
        _thread.start_new_thread(function, args)


def _stop_waking_on_signals() -> None:
    """Stop writing a byte to the wake-up fd at each signal: the worker closed it. On the main thread only."""
    if threading.current_thread() is threading.main_thread():
        signal.set_wakeup_fd(-1)


def _quiet_closed_wakeup_fd(before: Callable[[Any], object], unraisable: Any) -> None:
    """`sys.unraisablehook` of a child: the traceback of a write to the wake-up fd the worker closed is not
    news (the server reports the pipes' closing, once; Python prints a line before this is called, and the
    first SIGTERM after it stops the writes); the rest goes to the hook `before`."""
    exc = unraisable.exc_value
    wakeup_write = unraisable.err_msg is None and unraisable.object is None
    if not (wakeup_write and isinstance(exc, OSError) and exc.errno == errno.EBADF):
        before(unraisable)


def _server_signal(signum: int, frame: FrameType | None) -> None:
    """SIGHUP and SIGUSR1 in a child: the server acts on them; the worker may install its own handler."""


def run_child(worker: AbstractWorker, control_fd: int, event_fd: int, options: ChildOptions) -> int:
    """Run `worker` in this child (its signals blocked or ignored); return its exit code, negative for the
    signal to end the process by once it has cleaned up (`die_by_signal`).

    Start latency: the control thread starts with the first event (or a
    signal that needs it); one started before "startup" competes with it for
    the GIL and delays it by a quarter of a fork's start-up time.
    """
    redirect_stdio(options.stdio)
    worker._init_runtime()
    multiprocessing.current_process().name = f"spoc:{worker.name}"  # logging's processName
    set_process_title(f"spoc: {options.server_name}/{worker.name}" if options.server_name else f"spoc: {worker.name}")
    try:
        worker._signal_wake = SignalWake()  # also replaces the wake-up fd a fork of the server inherits
    except ValueError:  # not the main thread (set_wakeup_fd refuses): nothing was inherited either
        pass
    sys.unraisablehook = functools.partial(_quiet_closed_wakeup_fd, sys.unraisablehook)
    control = _Control(worker, control_fd, options)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, control.on_sigterm)
    signal.signal(signal.SIGHUP, _server_signal)
    signal.signal(signal.SIGUSR1, _server_signal)
    signal.signal(CONTROL_SIGNAL, control.on_control_signal)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, CHILD_SIGNALS)
    if options.parent_death_signal:
        set_parent_death_signal(CONTROL_SIGNAL)
    if options.expected_parent and os.getppid() != options.expected_parent:
        control._poke(b"H")  # the parent died before we could watch it
    if not options.told_of_parent_death_by_signal:
        control.start()  # EOF on the control pipe is then the only news of the parent's death
    writer = EventWriter(event_fd)

    def send(event: WorkerEvent) -> None:
        writer.send(event)
        control.start()

    try:
        server = (options.server_name, options.server_pid)
        code = live_as_child(worker, send, options.plugins, server, options.use_uvloop)
    finally:
        with control.lock:
            control.finished.set()
        # The body has ended: a stop request, a signal the server acts on or a stop signal sent to the whole group
        # means nothing here any more, and interpreter exit would reset a Python handler to the default action
        # (the server sends its control signal right after its write; the group's copy of a SIGTERM comes late;
        # the EOF of the event pipe, closed next, may bring the server's SIGTERM: `ChildLink.stop_by_sigterm`).
        for signum in (CONTROL_SIGNAL, signal.SIGHUP, signal.SIGUSR1, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        writer.close()
        flush_std_streams()
    if writer.pipe_closed or control.pipes_closed:  # the exit code is all the parent can still hear
        return CLOSED_PIPES_FAILED_EXIT if code > 0 else CLOSED_PIPES_EXIT
    if control.outside_signal is not None:  # cleared when the server asked for the stop
        return -control.outside_signal
    return code


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


def redirect_stdio(stdio: tuple[tuple[int, int], ...]) -> None:
    """Make each fd number of `stdio` a copy of its fd (then closed): what was written before goes where it was."""
    if stdio:
        flush_std_streams()
    for number, fd in stdio:
        if fd != number:
            os.dup2(fd, number)
            os.close(fd)


def process_entry(
    worker: AbstractWorker,
    control: multiprocessing.connection.Connection,
    events: multiprocessing.connection.Connection,
    options: ChildOptions,
    stdio: tuple[tuple[int, multiprocessing.connection.Connection], ...] = (),
) -> None:
    """Target of the multiprocessing.Process that runs a worker (spawn, forkserver); `stdio`'s fds travel as
    connections, as the pipes do."""
    if stdio:
        options = replace(options, stdio=tuple((number, os.dup(conn.fileno())) for number, conn in stdio))
        for _, conn in stdio:
            conn.close()
    code = run_child(worker, control.fileno(), events.fileno(), options)
    if code < 0:
        run_multiprocessing_exit()
        die_by_signal(-code)
    if code:
        sys.exit(code)


def flush_std_streams() -> None:
    """Flush stdout and stderr, so that what is buffered is written once, not once per process."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def die_by_signal(signum: int) -> None:
    """End this process by `signum`'s default action, so that its parent sees it killed by that signal."""
    flush_std_streams()
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)


def run_multiprocessing_exit() -> None:
    """Do what multiprocessing does before a child exits: flush queues' feeder threads, run finalizers."""
    import multiprocessing.util as mp_util

    exit_function = getattr(mp_util, "_exit_function", None)
    if callable(exit_function):
        exit_function()
