"""What each signal `Server.run_forever()` handles means to the server: a ``handle_<signame>`` method each.

SIGINT and SIGTERM stop it (a deliberate repeat forces the stop), SIGHUP
reloads its workers, SIGUSR1 logs their stacks. The handlers installed for
``run_forever()`` only note the signal and write it to the monitor's wake-up
fd; the monitor thread then calls `SignalMeanings.handle`, which acts on it.
`SignalMeanings` is a part of `Server` kept in a module of its own: it acts
through the server's stop, force, reload and run records.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ._log_extra import count, log_extra
from ._signals import REPEAT_WINDOW, repeat_window, signal_name

if TYPE_CHECKING:
    from ._server import Server
    from ._worker import AbstractWorker

__all__ = ["STACK_ANSWER_TIMEOUT", "SignalMeanings"]

logger = logging.getLogger("spoc")

STACK_ANSWER_TIMEOUT = 2.0
"""Seconds a process worker's child gets to answer a stack dump request before the server says it did not."""


class SignalMeanings:
    """The meanings of the signals one server's ``run_forever()`` handles; its methods run on the monitor thread."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self.received: list[int] = []
        """The shutdown signals received, in order (`Server.signals_received`)."""
        self._stop_signalled_at: float | None = None

    def handle(self, signum: int) -> None:
        """A signal as the monitor read it from the wake-up fd: its ``handle_<name>`` acts on it."""
        getattr(self, f"handle_{signal_name(signum).lower()}")(signum)

    def repeats_until(self) -> float | None:
        """Until when a repeated stop signal is a copy of the first one (None: no stop signal came)."""
        first = self._stop_signalled_at
        return None if first is None else first + REPEAT_WINDOW

    def handle_sigint(self, signum: int) -> None:
        """Stop gracefully; a deliberate second request forces: a SIGTERM past `REPEAT_WINDOW`, a SIGINT (a
        person's Ctrl+C) past `SIGINT_REPEAT_WINDOW`."""
        server = self._server
        self.received.append(signum)
        now = time.monotonic()
        if self._stop_signalled_at is None:
            logger.warning(
                "server %r received %s: stopping %s (send it again to force)",
                server.name,
                signal_name(signum),
                count(len(server._running), "worker"),
                extra=log_extra(server=server.name),
            )
            self._stop_signalled_at = now  # set before the stop: run_forever may return before the line below
            server._request_stop("signal")
            self._stop_signalled_at = time.monotonic()  # once the requests are out: time spent on them is not a gap
        elif now - self._stop_signalled_at < repeat_window(signum):
            logger.info(
                "server %r received %s again %.0f ms after the first: the same stop request (as timeout and "
                "systemd send it to the pid and to the group); send it again to force",
                server.name,
                signal_name(signum),
                max(0.0, now - self._stop_signalled_at) * 1000,
                extra=log_extra(server=server.name),
            )
        else:
            logger.warning(
                "server %r received %s again: forcing shutdown",
                server.name,
                signal_name(signum),
                extra=log_extra(server=server.name),
            )
            server._force()

    handle_sigterm = handle_sigint

    def handle_sighup(self, signum: int) -> None:
        """Reload: replace every running worker by a fresh instance, one after another; the server keeps running."""
        self._server._replacements.reload()

    def handle_sigusr1(self, signum: int) -> None:
        """Log the stack of every running worker, each whole and named; nothing stops."""
        server = self._server
        with server._lock:
            running = server._running_workers()
        logger.warning(
            "server %r received SIGUSR1: the stacks of %s follow",
            server.name,
            count(len(running), "worker"),
            extra=log_extra(server=server.name),
        )
        for worker in running:
            worker.dump_stack()
        if server._monitor is not None and any(w._run.stack_pending for w in running):
            server._monitor.call_later(STACK_ANSWER_TIMEOUT, lambda: self._unanswered_stacks(running))

    def _unanswered_stacks(self, workers: list[AbstractWorker]) -> None:
        for worker in workers:
            if worker._run.stack_pending and worker.exit_info is None:
                worker._run.stack_pending = False
                logger.warning(
                    "worker %r did not send its stack within %gs: its Python code cannot run (native code "
                    "holding the GIL, or a stopped process)",
                    worker.name,
                    STACK_ANSWER_TIMEOUT,
                    extra=log_extra(worker.name, server=self._server.name),
                )
