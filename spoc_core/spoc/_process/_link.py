"""The parent's link to one child: the control pipe it writes requests to, the event pipe it reads."""

from __future__ import annotations

import logging
import os
import threading
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from .. import _fds
from .._events import decode_event
from .._lifecycle import Send
from .._log_extra import log_extra
from ._runners import ChildRunner

if TYPE_CHECKING:
    from .._backend import WorkerChannel

__all__ = ["ChildLink"]

logger = logging.getLogger("spoc")


class ChildLink:
    """The parent's ends of a child's two pipes, and the runner the parent waits on it with.

    Requests (``S`` stop, ``D`` send the stacks) go down the control pipe. The
    child's events come up the event pipe, read by whoever `watch` es it: the
    server's monitor, or `ProcessWorker.join` outside a server. Once the child
    has ended, its last events are read, its ``"exit"`` is sent, and both
    pipes and the runner are closed.
    """

    def __init__(self, worker: str, control: Connection, events: Connection, runner: ChildRunner) -> None:
        self.worker = worker
        self.runner = runner
        self._control: Connection | None = control
        self._events: Connection | None = events
        self._lock = threading.RLock()  # re-entered when stop() runs in a signal handler on a thread inside request()

    def request(self, what: bytes) -> bool:
        """Write a request to the child's control pipe; False when the child is gone."""
        with self._lock:
            control = self._control
            if control is None:
                return False
            try:
                os.write(control.fileno(), what)
            except OSError:
                return False
        return True

    def watch(self, channel: WorkerChannel) -> None:
        """Have `channel` watch the child's event pipe (its events go to the channel) and its end.

        Callable again (a `ProcessWorker.join` that timed out, then another): a pipe the child has closed
        meanwhile is no longer watched.
        """
        events = self._events
        events_fd, sentinel = (-1 if events is None else events.fileno()), self.runner.sentinel
        send, unwatch = channel.send, channel.unwatch

        def on_events() -> None:
            if not self._read(send):  # the child closed its end
                unwatch(events_fd)
                self._close_events()

        def on_end() -> None:
            unwatch(sentinel)
            if self._events is not None:  # still open, so still watched (its number is not someone else's yet)
                unwatch(events_fd)
            self.runner.join(1.0)
            self._read(send, drain=True)  # what the child sent last
            channel.exited(self.runner.exitcode, self.runner.lost)  # lost: why the server ended it, not knowing how
            self._close_events()
            with self._lock:
                control, self._control = self._control, None
            if control is not None:
                _close(control)
            self.runner.close()

        if events is not None:
            channel.watch(events_fd, on_events)
        channel.watch(sentinel, on_end)

    def _read(self, send: Send, drain: bool = False) -> bool:
        """Send the next event (the pipe is readable), or with `drain` every one waiting; False once it is closed.

        One event per call while the child runs: the watcher polls the pipe
        again anyway (an event behind this one keeps it readable).
        """
        events = self._events
        try:
            while events is not None and (not drain or events.poll()):
                data = events.recv_bytes()
                try:
                    event = decode_event(data)
                except Exception as exc:  # an event whose data only the child can rebuild: report it, read on
                    logger.error(
                        "worker %r sent an event the server cannot read (%s: %s); it is dropped",
                        self.worker,
                        type(exc).__name__,
                        exc,
                        extra=log_extra(self.worker),
                    )
                else:
                    send(event)
                if not drain:
                    return True
        except (EOFError, OSError):
            return False
        return events is not None

    def _close_events(self) -> None:
        with self._lock:
            events, self._events = self._events, None
        if events is not None:
            _close(events)


def _close(conn: Connection) -> None:
    _fds.untrack(conn.fileno())
    conn.close()
