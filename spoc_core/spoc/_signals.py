"""Signal handling in one place: scoped handlers for run_forever, and blocking around forks."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = [
    "CHILD_SIGNALS",
    "SHUTDOWN_SIGNALS",
    "STACK_DUMP_SIGNAL",
    "blocked",
    "handlers_installed",
    "set_handler",
    "signal_name",
    "unblock",
]

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals run_forever() handles: the first asks for a graceful shutdown, a second forces it."""

STACK_DUMP_SIGNAL = signal.SIGUSR2
"""Sent to a process worker's child to make it print every thread's Python stack to stderr."""

CHILD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, STACK_DUMP_SIGNAL)
"""Signals held back while a child process is created, until it has installed its own handlers."""

Handler = Callable[[int, FrameType | None], object]

try:
    import _signal as _c_signal  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # not CPython
    _c_signal = signal
_raw: Any = _c_signal
"""The C module under `signal`: the same calls without the conversions to and from enums.

The wrappers in `signal` turn every number and handler into an enum member
(and the previous handler back), which runs enough Python to cost a freshly
forked child a tenth of its start-up time in copy-on-write faults.
"""


def set_handler(signum: int, handler: Handler | int) -> None:
    """``signal.signal(signum, handler)`` without the enum conversions, for a child's start-up."""
    _raw.signal(int(signum), int(handler) if isinstance(handler, int) else handler)


def unblock(signals: tuple[signal.Signals, ...]) -> None:
    """Unblock `signals` in the calling thread, without the enum conversions."""
    _raw.pthread_sigmask(signal.SIG_UNBLOCK, [int(signum) for signum in signals])


@contextmanager
def blocked(signals: tuple[signal.Signals, ...] = CHILD_SIGNALS) -> Iterator[None]:
    """Block `signals` in the calling thread; a child forked or spawned meanwhile inherits the mask.

    The child unblocks them once its handlers are in place, so a Ctrl+C that
    lands while it is being born is never a KeyboardInterrupt in the child.
    """
    previous = _raw.pthread_sigmask(signal.SIG_BLOCK, [int(signum) for signum in signals])
    try:
        yield
    finally:
        _raw.pthread_sigmask(signal.SIG_SETMASK, previous)


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
