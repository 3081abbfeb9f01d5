"""The parent's link to one child: the control pipe it writes requests to, the event pipe it reads."""

from __future__ import annotations

import logging
import os
import signal
import threading
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from .. import _fds
from .._events import decode_event
from .._lifecycle import Send
from .._log_extra import log_extra
from ._child import CLOSED_PIPES_EXIT, CLOSED_PIPES_FAILED_EXIT
from ._runners import ChildRunner

if TYPE_CHECKING:
    from .._backend import WorkerChannel

__all__ = ["ChildLink"]

logger = logging.getLogger("spoc")

CLOSED_PIPES_EXITS = (CLOSED_PIPES_EXIT, CLOSED_PIPES_FAILED_EXIT)


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
        self.pipes_closed = False
        """The child's worker closed the pipes while it ran (``os.closerange()``): a request met EPIPE, or the
        event pipe read EOF before its ``"shutdown"`` while the child still ran (or was exiting)."""
        self.stop_sent = False
        """A stop request was written to the control pipe."""
        self.teardown_done = False
        """The child sent its ``"shutdown"`` event: its body has ended, and it closes its event pipe next."""
        self.stopped_by_sigterm = False
        """A stop request went to the child as a SIGTERM (`stop_by_sigterm`)."""

    def request(self, what: bytes) -> bool:
        """Write a request to the child's control pipe; False when the child is gone, or has closed the pipe
        (`pipes_closed`)."""
        with self._lock:
            control = self._control
            if control is None:
                return False
            try:
                os.write(control.fileno(), what)
                self.stop_sent = self.stop_sent or what == b"S"
            except BrokenPipeError:  # no reader: the child has ended, or its worker closed the pipe
                self.pipes_closed = self.pipes_closed or self.runner.is_alive()
                return False
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
                self._events_ended()
                self._close_events()

        def on_end() -> None:
            unwatch(sentinel)
            if self._events is not None:  # still open, so still watched (its number is not someone else's yet)
                unwatch(events_fd)
            self.runner.join(1.0)
            self._read(send, drain=True)  # what the child sent last
            exitcode = self.runner.exitcode
            if exitcode in CLOSED_PIPES_EXITS:
                exitcode = self._closed_pipes(exitcode)
            channel.exited(exitcode, self.runner.lost)  # lost: why the server ended it, not knowing how
            self._close_events()
            with self._lock:
                control, self._control = self._control, None
            if control is not None:
                _close(control)
            self.runner.close()

        if events is not None:
            channel.watch(events_fd, on_events)
        channel.watch(sentinel, on_end)

    def _events_ended(self) -> None:
        """The event pipe read EOF: the child is exiting (it sent its ``"shutdown"``, or it is ending), or its
        worker closed the pipe while it runs. A stop request written before then may be lost (see
        `stop_by_sigterm`): that child gets a SIGTERM too."""
        self.pipes_closed = self.pipes_closed or (not self.teardown_done and self.runner.is_alive())
        if self.pipes_closed and self.stop_sent:
            self.stop_by_sigterm()

    def stop_by_sigterm(self) -> None:
        """Stop the child with a SIGTERM, its worker having closed its pipes (``os.closerange()``).

        Correctness: a request written to the control pipe after the worker closed it, while the child's
        control thread sat in poll(), is taken (poll holds the pipe open until woken) and lost.
        """
        if not self.stopped_by_sigterm:  # one stop, one SIGTERM: a second one would end the child at once
            self.stopped_by_sigterm = True
            self.runner.send_signal(signal.SIGTERM)

    def _closed_pipes(self, exitcode: int) -> int:
        """Say that the child's worker closed its pipes to the server, and how it ended (`CLOSED_PIPES_EXIT`);
        return the exit code it would have had: 0 without error, 1 after one."""
        failed = exitcode == CLOSED_PIPES_FAILED_EXIT
        logger.log(
            logging.ERROR if failed else logging.WARNING,
            "worker %r (pid %s) closed the pipes the server gave its process (os.closerange(), or a library "
            "that closes the file descriptors it inherits): the server heard none of its events since%s; it %s",
            self.worker,
            self.runner.pid,
            ", and stopped it with SIGTERM" if self.stopped_by_sigterm else "",
            "failed, its error printed on its stderr, and ran its teardown"
            if failed
            else "ended without error after its teardown",
            extra=log_extra(self.worker),
        )
        return 1 if failed else 0

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
                    self.teardown_done = self.teardown_done or event.kind == "shutdown"
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
