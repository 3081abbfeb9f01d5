"""Exceptions, warnings and the error record that carries a worker's failure to its server.

Many exceptions do not pickle, so `ErrorRecord` keeps what always travels
from a child (type name, message, formatted traceback, phase), and the
exception itself only when it survives a pickle round trip.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "BackendError",
    "stacklevel_outside_spoc",
    "ErrorRecord",
    "Phase",
    "SpocError",
    "SpocWarning",
    "ThreadOnlyObjectWarning",
    "WorkerStartError",
]

Phase = Literal["setup", "main", "teardown"]


class SpocError(Exception):
    """Base class of every error spoc raises on its own account."""

    __module__ = "spoc"  # as tracebacks and warnings name it


class BackendError(SpocError):
    """A worker names a backend no plugin registered, or one that cannot run it."""

    __module__ = "spoc"  # as tracebacks and warnings name it


class WorkerStartError(SpocError, RuntimeError):
    """A worker could not be started; the message names the worker and the cause."""

    __module__ = "spoc"  # as tracebacks and warnings name it


class SpocWarning(UserWarning):
    """Base class of every warning spoc emits."""

    __module__ = "spoc"  # as tracebacks and warnings name it


class ThreadOnlyObjectWarning(SpocWarning):
    """A ProcessWorker holds an object that only works between threads of one process.

    `queue.Queue`, `threading.Lock`, `threading.Event` and their kin are copied
    into the child process, so the child and the parent each hold their own
    unconnected copy: nothing put on one side ever arrives on the other.
    """

    __module__ = "spoc"


@dataclass(frozen=True)
class ErrorRecord:
    """A worker's exception, in a form that crosses thread and process boundaries.

    Attributes:
        type_name: qualified name of the exception's type, e.g. ``"builtins.ValueError"``.
        message: ``str(exception)``.
        traceback: the formatted traceback, as ``traceback.format_exception`` renders it.
        phase: the lifecycle phase that raised: ``"setup"``, ``"main"`` or ``"teardown"``.
        exception: the exception object itself, or None when it could not be
            pickled across the process boundary (the other fields are always set).
            Once the worker has ended it carries no ``__traceback__`` (nor do
            the exceptions chained to it; the text is in `traceback`): a
            traceback holds the ended worker's frames, and with them the
            worker and all it referenced, alive for as long as the record is
            kept (`WorkerExit`, a restarted worker's ``previous_exit``).
    """

    type_name: str
    message: str
    traceback: str
    phase: Phase
    exception: BaseException | None = field(default=None, compare=False)

    @classmethod
    def from_exception(cls, exc: BaseException, phase: Phase) -> ErrorRecord:
        """Build the record of `exc`, raised during `phase`."""
        exc_type = type(exc)
        module = exc_type.__module__
        name = exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"
        return cls(
            type_name=name,
            message=_message_of(exc),
            traceback="".join(traceback.format_exception(exc_type, exc, exc.__traceback__)),
            phase=phase,
            exception=exc,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its exception apart: an exception that does not pickle here, or does not
        rebuild where the record arrives (its class importable only in the child), is lost alone."""
        exception = None
        if self.exception is not None:
            try:
                exception = pickle.dumps(self.exception, pickle.HIGHEST_PROTOCOL)
            except Exception:
                pass
        return (_rebuilt, (self.type_name, self.message, self.traceback, self.phase, exception))

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message} (in {self.phase})"

    def release_frames(self) -> None:
        """Drop the tracebacks of `exception` and of every exception chained to it; see `exception`."""
        pending = [self.exception]
        seen: set[int] = set()
        while pending:
            exc = pending.pop()
            if exc is None or id(exc) in seen:
                continue
            seen.add(id(exc))
            exc.__traceback__ = None
            pending += [exc.__cause__, exc.__context__]
            if sys.version_info >= (3, 11) and isinstance(exc, BaseExceptionGroup):  # noqa: F821 (3.11+)
                pending += exc.exceptions


def _rebuilt(type_name: str, message: str, text: str, phase: Phase, exception: bytes | None) -> ErrorRecord:
    """An `ErrorRecord` as it arrives from another process (see `ErrorRecord.__reduce__`)."""
    rebuilt = None
    if exception is not None:
        try:
            rebuilt = pickle.loads(exception)
        except Exception:
            pass
    return ErrorRecord(type_name, message, text, phase, rebuilt if isinstance(rebuilt, BaseException) else None)


def _message_of(exc: BaseException) -> str:
    """``str(exc)``, or what can be said of it when its ``__str__`` raises."""
    try:
        return str(exc)
    except Exception as failure:
        return f"<{type(exc).__name__}.__str__ raised {type(failure).__name__}>"


def stacklevel_outside_spoc() -> int:
    """The ``stacklevel`` that makes a `warnings.warn` in the caller point at the first frame outside spoc:
    the user's line, however deep in spoc the warning is raised."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back
        level += 1
    return level
