"""The signal sets, names and tools the rest of spoc shares: scoped handlers for run_forever, blocking around
forks, and the window in which a repeat is the same request. Each process role installs its own handlers
(the server's run_forever, a child, the fork server, `spoc run`) with these."""

from __future__ import annotations

import atexit
import importlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = [
    "ALL_SIGNALS",
    "CHILD_SIGNALS",
    "CONTROL_SIGNAL",
    "RELOAD_SIGNAL",
    "REPEAT_WINDOW",
    "SIGINT_REPEAT_WINDOW",
    "SERVER_SIGNALS",
    "SHUTDOWN_SIGNALS",
    "STACK_DUMP_SIGNAL",
    "blocked",
    "handlers_installed",
    "repeat_window",
    "signal_name",
    "start_helper_thread",
]

REPEAT_WINDOW = 1.0
"""Seconds after the first stop signal during which another SIGTERM is the same request, not a second one.

``timeout``, systemd (``KillMode=control-group`` or ``mixed``) and other
supervisors signal the server's pid and its process group a moment apart,
so one stop reaches the server, and each process worker's child, twice
within milliseconds.
"""

SIGINT_REPEAT_WINDOW = 0.1
"""The same for SIGINT: a person's Ctrl+C. Pressed again, it forces, however soon (no one presses twice within
0.1 s: about 0.15 s apart at the fastest); a program that sends SIGINT to the pid and then to the group does so
within milliseconds, and that stays one request."""


def repeat_window(signum: int) -> float:
    """Seconds after a first stop signal during which `signum` again is the same request."""
    return SIGINT_REPEAT_WINDOW if signum == signal.SIGINT else REPEAT_WINDOW


SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals run_forever() stops on: the first asks for a graceful shutdown; a deliberate second one forces it."""

RELOAD_SIGNAL = signal.SIGHUP
"""Sent to the server: replace every worker by a fresh instance, one after another, and keep running."""

STACK_DUMP_SIGNAL = signal.SIGUSR1
"""Sent to the server: log the current stack of every worker, each whole and headed by its name and pid."""

SERVER_SIGNALS = (*SHUTDOWN_SIGNALS, RELOAD_SIGNAL, STACK_DUMP_SIGNAL)
"""Every signal run_forever() handles."""

CONTROL_SIGNAL: int = signal.SIGRTMAX
"""spoc's own signal inside a process worker's child: "read your control pipe now".

The server sends it after writing a request (stop, stack dump) to the child's
control pipe, and the kernel sends it when the child's parent dies (the
parent-death signal; the pipe then reads EOF). Its handler only starts the
child's control thread if it is not running yet. A real-time signal, so that
spoc borrows none a user may want (SIGHUP, SIGUSR1, SIGUSR2) and no wake-up fd.
"""

CHILD_SIGNALS = (*SERVER_SIGNALS, CONTROL_SIGNAL)
"""Signals held back while a child process is created, until it has installed its own handlers."""

Handler = Callable[[int, FrameType | None], object]


_sigmask: Callable[[int, Iterable[int]], set[int]] = importlib.import_module("_signal").pthread_sigmask
"""`signal.pthread_sigmask` without its wrapper: CPython's C function, which returns ints. Speed: the wrapper
turns each signal of the old mask into a `signal.Signals` member, 55 us when it holds ALL_SIGNALS: paid by each
helper thread started (a control socket's connection: a tenth of what a ``spoc ctl`` request costs the server)
and each bare thread of a child."""


@contextmanager
def blocked(signals: tuple[int, ...] = CHILD_SIGNALS) -> Iterator[None]:
    """Block `signals` in the calling thread; a child or thread started meanwhile inherits the mask, and a
    worker's child unblocks them once its handlers are in place (no KeyboardInterrupt while it is born)."""
    previous = _sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        _sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def handlers_installed(
    signals: tuple[int, ...], handler: Handler, wakeup_fd: int, repeats_until: Callable[[], float | None]
) -> Iterator[bool]:
    """For the duration of the block, handle `signals` and make every signal write its number to `wakeup_fd`.

    Python runs `handler` only on the main thread, once it runs Python code
    again; the C-level handler writes to `wakeup_fd` at once, from any thread,
    so its reader acts on the signal and `handler` only records it. Afterwards
    the previous handlers and wakeup fd come back, but a stop signal repeated
    before `repeats_until()` is dropped (`_LateRepeats`). Yields False, and
    installs nothing, outside the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    # The wakeup fd first: a signal that finds `handler` installed then always reaches `wakeup_fd`. The other
    # way round, one landing between the two calls was recorded by `handler` and never acted on.
    previous_fd = signal.set_wakeup_fd(wakeup_fd, warn_on_full_buffer=False)
    previous: dict[int, Any] = {}
    try:
        for signum in signals:
            previous[signum] = signal.signal(signum, handler)
        yield True
    finally:
        until = repeats_until()
        signal.set_wakeup_fd(previous_fd)
        for signum, old in previous.items():
            restored = old if old is not None else signal.SIG_DFL
            if until is not None and signum in SHUTDOWN_SIGNALS:
                restored = _LateRepeats(restored, until)
            signal.signal(signum, restored)
        if until is not None:
            atexit.register(_ignore_at_exit, until)


ALL_SIGNALS = tuple(int(signum) for signum in signal.valid_signals())


def start_helper_thread(target: Callable[[], object], name: str) -> threading.Thread:
    """Start a daemon thread that never receives a signal; return it.

    The kernel hands a signal sent to a process to any of its threads that
    does not block it, while Python runs the handler only on the main thread,
    when that thread next runs Python code. A signal that lands on a helper
    thread waits until the main thread wakes up: a worker's own SIGHUP handler
    would run only once its ``self.wait(60)`` ends. spoc starts its own threads
    where a worker lives this way, and plugins should too (a metrics flusher,
    a watchdog in a process worker's child).
    """
    thread = threading.Thread(target=target, name=name, daemon=True)
    with blocked(ALL_SIGNALS):  # the new thread inherits the mask: no moment in which a signal can land on it
        thread.start()
    return thread


class _LateRepeats:
    """Drops a stop signal repeated until `until`, then hands it to `previous`: once run_forever() returned,
    the copy a supervisor sends to the group just after the pid must not kill the program as it exits."""

    def __init__(self, previous: Handler | int, until: float) -> None:
        self.previous = previous
        self.until = until

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if time.monotonic() < self.until:
            return  # the same stop request, arriving late
        signal.signal(signum, self.previous)
        if self.previous == signal.SIG_DFL:
            os.kill(os.getpid(), signum)  # delivered again, now to the default action
        elif callable(self.previous):
            self.previous(signum, frame)


def _ignore_at_exit(until: float) -> None:
    """At interpreter exit Python resets its handlers to the default action: ignore late repeats outright."""
    if time.monotonic() < until:
        for signum in SHUTDOWN_SIGNALS:
            if isinstance(signal.getsignal(signum), _LateRepeats):
                signal.signal(signum, signal.SIG_IGN)


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15, ``"SIGRTMIN+5"`` for a real-time signal (as ``kill -l`` names it), else ``"signal 99"``."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        pass
    rtmin, rtmax = getattr(signal, "SIGRTMIN", 0), getattr(signal, "SIGRTMAX", 0)
    if rtmin < signum < rtmax:
        return f"SIGRTMIN+{signum - rtmin}" if signum - rtmin <= (rtmax - rtmin) // 2 else f"SIGRTMAX-{rtmax - signum}"
    return f"signal {signum}"
