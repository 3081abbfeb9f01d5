"""The one kind of event every worker sends to its server (`WorkerEvent`), how a worker's life ended
(`WorkerExit`), and how a server's `run_forever()` ended (`ServerExit`)."""

from __future__ import annotations

import os
import pickle
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from ._errors import ErrorRecord, Phase
from ._signals import signal_name

__all__ = [
    "EventKind",
    "ExitOutcome",
    "ServerExit",
    "StopReason",
    "WorkerEvent",
    "WorkerExit",
    "decode_event",
    "encode_event",
    "make_event",
]

EventKind = Literal["startup", "shutdown", "error", "exit", "stopping", "record", "stack"]
"""The kinds of event:

- ``"startup"``: setup() completed; main() is about to run.
- ``"error"``: a phase raised; the event carries an `ErrorRecord`.
- ``"shutdown"``: teardown() completed.
- ``"exit"``: the worker's body has returned; `exitcode` is in ``data``, and a ``reason`` when its backend
  saw it end from outside (see `WorkerExit.reason`).
- ``"stopping"``: the worker was asked to stop (sent from where `stop()` was
  called, so it may arrive after the worker's own later events); ``signal``
  in ``data`` when a signal from outside the server (a ``kill`` of a process
  worker's child) asked for it.
- ``"stack"``: the stacks of the worker's threads and tasks, text in
  ``data["stack"]``, sent on the server's request (`ProcessWorker.dump_stack`).
- ``"record"``: a plugin's own record, sent with `AbstractWorker.send_record`;
  ``data`` holds its ``topic`` and its ``fields``.
"""

ExitOutcome = Literal["clean", "stopped", "failed", "killed", "abandoned"]


@dataclass(frozen=True)
class WorkerEvent:
    """Something that happened to a worker, as its server receives it.

    Attributes:
        worker: the worker's name.
        kind: what happened (see `EventKind`).
        phase: the lifecycle phase it happened in, where one applies.
        pid: the process the worker body runs in.
        thread_id: the thread (``threading.get_ident()``) the event was emitted from.
        monotonic: ``time.monotonic()`` when it was emitted (system-wide on Linux,
            so it compares across processes).
        wall: ``time.time()`` when it was emitted.
        error: the failure, for ``"error"`` events.
        data: extra fields: ``exitcode`` (and maybe ``reason``) on ``"exit"``; ``duration`` on
            ``"startup"`` (the seconds setup() took), ``"shutdown"`` (teardown())
            and ``"error"`` (the failed phase, until it raised); ``topic`` and
            ``fields`` on ``"record"``.
    """

    worker: str
    kind: str
    phase: Phase | None = None
    pid: int = 0
    thread_id: int = 0
    monotonic: float = 0.0
    wall: float = 0.0
    error: ErrorRecord | None = None
    data: dict[str, Any] = field(default_factory=dict)


_EVENT_FIELDS = tuple(WorkerEvent.__dataclass_fields__)


def _rebuilt_event(values: tuple[Any, ...]) -> WorkerEvent:
    """A `WorkerEvent` from its fields' values, as `encode_event` sends them."""
    event = object.__new__(WorkerEvent)
    event.__dict__.update(zip(_EVENT_FIELDS, values, strict=True))
    return event


def make_event(
    worker: str,
    kind: str,
    *,
    phase: Phase | None = None,
    error: ErrorRecord | None = None,
    **data: Any,
) -> WorkerEvent:
    """Stamp a new event with the current process, thread and clocks."""
    # Event delay: built as a decoded event is, past the frozen __init__ (nine object.__setattr__ calls after
    # the stamp, a microsecond on the way of every event).
    return _rebuilt_event(
        (worker, kind, phase, os.getpid(), threading.get_ident(), time.monotonic(), time.time(), error, data)
    )


def encode_event(event: WorkerEvent) -> bytes:
    """The bytes that carry `event` from a child process to its server: a pickle of its fields' values.

    Event delay: a tuple, not the object (whose pickle names its class, looked up again on every read, and
    rebuilds it through the frozen __init__): 1.5 us less to write and 1.2 us less to read, of about 50.
    """
    return pickle.dumps(tuple(event.__dict__.values()), pickle.HIGHEST_PROTOCOL)


def decode_event(data: bytes) -> WorkerEvent:
    """The event `encode_event` turned into `data` (an `ErrorRecord` whose exception cannot be rebuilt here
    arrives without it); raises what unpickling raised for data only the child can rebuild."""
    values = pickle.loads(data)
    if type(values) is not tuple or len(values) != len(_EVENT_FIELDS):
        raise TypeError(f"expected an event's {len(_EVENT_FIELDS)} fields, received {type(values).__name__}")
    return _rebuilt_event(values)


@dataclass(frozen=True)
class WorkerExit:
    """How a worker's life ended.

    Attributes:
        worker: the worker's name.
        exitcode: 0 after a clean end, a positive code after a failure, or the
            negative signal number that killed a process worker.
        error: the first failure the worker reported, if any.
        stop_requested: whether the worker had been asked to stop.
        forced: whether spoc had to kill it (a process past the shutdown
            deadline) or give up waiting for it (a thread that would not stop).
        stop_signal: the name of a signal from outside the server that made
            a process worker stop (``"SIGTERM"``: someone ran ``kill`` on its
            child); its teardown ran, and its child then ended by that signal.
        restarts: how many times a supervisor had restarted the worker before
            this run (`Server.restart_worker`); 0 for its first run.
        teardown_duration: seconds its ``teardown()`` took, from its
            ``"shutdown"`` event; None when it sent none (its teardown never
            ran, or it was killed first).
        reason: what its backend said of an end it saw from outside the body
            (a cluster's word that the actor or its node died); such an end
            is ``killed``. None for the core's own backends.
    """

    worker: str
    exitcode: int | None
    error: ErrorRecord | None = None
    stop_requested: bool = False
    forced: bool = False
    stop_signal: str | None = None
    restarts: int = 0
    teardown_duration: float | None = None
    reason: str | None = None

    @property
    def signal(self) -> str | None:
        """The name of the signal that ended the process (``"SIGKILL"``, ``"SIGRTMIN+5"``), or None."""
        code = self.exitcode
        return signal_name(-code) if code is not None and code < 0 else None

    @property
    def outcome(self) -> ExitOutcome:
        """One word for the ending: ``clean``, ``stopped``, ``failed``, ``killed`` or ``abandoned``.

        ``abandoned`` is a worker whose body would not stop and could not be
        ended (a thread: threads cannot be killed; it may still be running);
        ``killed`` is a process ended by a signal or a worker spoc had to force,
        a process stopped by a signal the server did not send among them, or
        one whose backend saw it end from outside (`reason`);
        ``failed`` is an error or a non-zero exit code; ``stopped`` a clean end
        after a stop request (also when the server's shutdown signal reached the
        child first and it ended by it, after its teardown); ``clean`` a clean
        end on the worker's own account. A process ended by a signal before its
        teardown ran (a second SIGTERM cut it off) is ``killed``, never
        ``stopped``.
        """
        if self.forced and self.exitcode is None and self.reason is None:
            return "abandoned"
        graceful = (
            self.stop_signal is not None and self.stop_signal == self.signal and self.teardown_duration is not None
        )
        if (
            self.forced
            or self.reason is not None
            or (self.signal is not None and not (graceful and self.stop_requested))
        ):
            return "killed"
        if self.error is not None or (self.exitcode != 0 and not graceful):
            return "failed"
        return "stopped" if self.stop_requested else "clean"

    @property
    def ok(self) -> bool:
        """True when the worker ended cleanly, on its own or after a stop request."""
        return self.outcome in ("clean", "stopped")


StopReason = Literal["signal", "stop", "workers_ended"]


@dataclass(frozen=True)
class ServerExit:
    """How a `run_forever()` ended; turn it into a process exit code with `exit_code`.

    Attributes:
        server: the server's name.
        reason: ``"signal"`` (SIGINT/SIGTERM), ``"stop"`` (`Server.stop()` was
            called) or ``"workers_ended"`` (every worker ended on its own).
        signal: the name of the first signal received, if any.
        exits: how each started worker ended.
        forced: whether shutdown had to kill a process or abandon a thread
            (the deadline passed, or a second signal arrived).
        failure: why the server gave up, when it was stopped with
            ``stop(failure=...)`` (a supervisor past its restart intensity).
    """

    server: str
    reason: StopReason
    signal: str | None = None
    exits: tuple[WorkerExit, ...] = field(default_factory=tuple)
    forced: bool = False
    failure: str | None = None

    @property
    def failed(self) -> tuple[WorkerExit, ...]:
        """The workers that did not end cleanly (failed, killed or forced)."""
        return tuple(e for e in self.exits if not e.ok)

    @property
    def ok(self) -> bool:
        """True when every worker ended cleanly, nothing had to be forced and no `failure` was reported."""
        return not self.failed and not self.forced and self.failure is None

    @property
    def exit_code(self) -> int:
        """0 when `ok`, else 1: what a command-line wrapper should exit with."""
        return 0 if self.ok else 1

    @property
    def restarts(self) -> dict[str, int]:
        """How many times each restarted worker was restarted, by name: the workers that never were are left out."""
        return {e.worker: e.restarts for e in self.exits if e.restarts}
