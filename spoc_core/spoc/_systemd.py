"""What a server tells systemd through its notify protocol (``sd_notify``): dormant unless ``NOTIFY_SOCKET`` is set.

- ``READY=1`` once every worker the server started with has started (its
  ``setup()`` returned) or ended, with ``STATUS=`` a one-line summary, and
  ``STATUS=`` again whenever that summary changes.
- SIGHUP: ``RELOADING=1`` with ``MONOTONIC_USEC=``, then ``READY=1`` when the
  reload is done (what ``Type=notify-reload`` expects).
- Shutdown: ``STOPPING=1`` at once, and ``EXTEND_TIMEOUT_USEC=`` every
  second while it runs, so that a ``shutdown_timeout`` longer than
  ``TimeoutStopSec`` is not cut short by systemd before spoc's own escalation.
- With ``WATCHDOG_USEC`` (and ``WATCHDOG_PID`` absent or this process's):
  ``WATCHDOG=1`` at half that interval, sent from the server's monitor thread
  while it runs, so a hung monitor stops the pings and systemd restarts the
  unit.

No libsystemd: one datagram per message to the socket's path or abstract
(``@``) name. A send that fails is logged once and never stops the server.
The variables are taken out of the environment, so workers' children do not
inherit them. `Server.run_forever()` (and so ``spoc run``) turns this on;
a plain ``start()`` only after `Server.notify_systemd()`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING

from ._log_extra import count, log_extra

if TYPE_CHECKING:
    from ._server import Server

__all__ = ["NOTIFY_SOCKET_ENV", "WATCHDOG_PID_ENV", "WATCHDOG_USEC_ENV", "Notifier", "SystemdReports"]

logger = logging.getLogger("spoc")

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"

EXTEND_EVERY = 1.0
"""Seconds between two ``EXTEND_TIMEOUT_USEC=`` messages during a shutdown."""
EXTEND_BY = 5.0
"""Seconds each ``EXTEND_TIMEOUT_USEC=`` gives beyond the next one's due time: a monitor that is late by less
never lets systemd's stop timeout run out while spoc still stops its workers."""


class Notifier:
    """The socket systemd listens on (``NOTIFY_SOCKET``); `send` writes one message, never raises."""

    def __init__(self, address: str, server: str) -> None:
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._shown = address
        self._server = server
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._socket.setblocking(False)  # systemd reads at once; a full queue must not stall the monitor
        self._failed = False

    @classmethod
    def from_environment(cls, server: str, environ: MutableMapping[str, str]) -> tuple[Notifier | None, float | None]:
        """The notifier ``NOTIFY_SOCKET`` names (None without it) and the watchdog interval in seconds (None
        without ``WATCHDOG_USEC``, or with a ``WATCHDOG_PID`` that is another process's). Takes the variables
        out of `environ`: workers' children must not talk to systemd as the service."""
        address = environ.pop(NOTIFY_SOCKET_ENV, "").strip()
        usec = environ.pop(WATCHDOG_USEC_ENV, "").strip()
        pid = environ.pop(WATCHDOG_PID_ENV, "").strip()
        if not address:
            return None, None
        watchdog = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec) / 1e6
        return cls(address, server), watchdog

    def send(self, *fields: str) -> None:
        """Send one message of `fields` (``"READY=1"``, ...); a failure is logged the first time only."""
        try:
            self._socket.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                logger.warning(
                    "server %r could not notify systemd at %s (%s: %s); it goes on, and says this once",
                    self._server,
                    self._shown,
                    type(exc).__name__,
                    exc,
                    extra=log_extra(server=self._server),
                )

    def close(self) -> None:
        self._socket.close()


class SystemdReports:
    """What one server tells systemd, and when (a part of `Server`; every method is cheap when dormant)."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._notifier: Notifier | None = None
        self._asked = False
        self._ready = False
        self._status = ""
        self._watchdog: float | None = None

    def enable(self, environ: MutableMapping[str, str] | None = None) -> bool:
        """Start talking to systemd if ``NOTIFY_SOCKET`` asks for it (once); whether it does."""
        if not self._asked:
            self._asked = True
            server = self._server
            self._notifier, self._watchdog = Notifier.from_environment(
                server.name, os.environ if environ is None else environ
            )
        return self._notifier is not None

    def started(self) -> None:
        """The monitor runs: begin the watchdog's pings (from the monitor thread, so a hung monitor stops them)."""
        if self._notifier is not None and self._watchdog is not None:
            self._every(self._watchdog / 2, lambda: self._send("WATCHDOG=1"), lambda: True)

    def changed(self) -> None:
        """A worker started or ended: ``READY=1`` once every first worker has, and ``STATUS=`` when it changed."""
        if self._notifier is None:
            return
        server = self._server
        with server._lock:
            workers = list(server._workers.values())
            running = sum(1 for w in workers if w.name in server._running and w.exit_info is None)
            waiting = len(server._replacements.pending)
            settled = all(w._run.started_reported or w.exit_info is not None for w in workers)
            started = server._started
        status = f"{count(running, 'worker')} running" + (f", {waiting} restarting" if waiting else "")
        if not self._ready:
            if started and settled and not server._shutting_down:
                self._ready, self._status = True, status
                self._send("READY=1", f"STATUS={status}")
        elif status != self._status:
            self._status = status
            self._send(f"STATUS={status}")

    def reloading(self) -> None:
        self._send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def reloaded(self) -> None:
        if self._ready:
            self._send("READY=1", f"STATUS={self._status}")

    def stopping(self) -> None:
        """The shutdown began: ``STOPPING=1``, and its time extended every `EXTEND_EVERY` seconds while it runs."""
        if self._notifier is None:
            return
        self._send("STOPPING=1", self._extension())
        self._every(EXTEND_EVERY, lambda: self._send(self._extension()), lambda: not self._server._joined)

    def _extension(self) -> str:
        return f"EXTEND_TIMEOUT_USEC={int((EXTEND_EVERY + EXTEND_BY) * 1e6)}"

    def _every(self, interval: float, action: Callable[[], None], still: Callable[[], bool]) -> None:
        """Run `action` every `interval` seconds on the monitor thread while `still()` and the monitor runs."""
        monitor = self._server._monitor
        if monitor is None:
            return

        def again() -> None:
            if still():
                action()
                monitor.call_later(interval, again)

        monitor.call_later(interval, again)

    def _send(self, *fields: str) -> None:
        if self._notifier is not None:
            self._notifier.send(*fields)

    def close(self) -> None:
        notifier, self._notifier = self._notifier, None
        if notifier is not None:
            notifier.close()
