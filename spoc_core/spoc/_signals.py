"""Signal handling in one place: scoped handlers for run_forever, and blocking around forks."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["CHILD_SIGNALS", "SHUTDOWN_SIGNALS", "STACK_DUMP_SIGNAL", "blocked", "handlers_installed", "signal_name"]

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals run_forever() handles: the first asks for a graceful shutdown, a second forces it."""

STACK_DUMP_SIGNAL = signal.SIGUSR2
"""Sent to a process worker's child to make it print every thread's Python stack to stderr."""

CHILD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, STACK_DUMP_SIGNAL)
"""Signals held back while a child process is created, until it has installed its own handlers."""

Handler = Callable[[int, FrameType | None], object]


@contextmanager
def blocked(signals: tuple[signal.Signals, ...] = CHILD_SIGNALS) -> Iterator[None]:
    """Block `signals` in the calling thread; a child forked or spawned meanwhile inherits the mask.

    The child unblocks them once its handlers are in place, so a Ctrl+C that
    lands while it is being born is never a KeyboardInterrupt in the child.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def handlers_installed(signals: tuple[signal.Signals, ...], handler: Handler, wakeup_fd: int) -> Iterator[bool]:
    """For the duration of the block, handle `signals` and make every signal write its number to `wakeup_fd`.

    The kernel may deliver a signal to any thread, while Python runs
    `handler` only on the main thread, and only once that thread runs Python
    code again: a main thread blocked in a lock wait would never see it. The
    C-level handler writes the signal number to `wakeup_fd` at once, from
    whichever thread received the signal; the reader of that fd is where the
    signal is acted on, and `handler` only records it.

    The previous handlers and wakeup fd are restored afterwards. Yields False
    (and installs nothing) outside the main thread, where Python does not
    allow signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = {signum: signal.signal(signum, handler) for signum in signals}
    previous_fd = signal.set_wakeup_fd(wakeup_fd, warn_on_full_buffer=False)
    try:
        yield True
    finally:
        signal.set_wakeup_fd(previous_fd)
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15; ``"signal 99"`` for numbers without a name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
