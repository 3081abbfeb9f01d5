"""A service run as a systemd ``Type=notify`` unit would run it (issue 32, point 1): ``spoc run notified.py:server``.

The test binds the datagram socket NOTIFY_SOCKET names. ``slow``'s setup takes SETUP_SECONDS, then sends
``X-SETUP-DONE`` to that socket itself (the address read at import: the server takes it out of the environment),
so READY=1 must follow it there. ``child`` (a fork process worker) prints ``CHILD-ENV <NOTIFY_SOCKET or ->``.
With BLOCK=1, ``slow`` sends ``X-BLOCK`` and then a record whose hook holds the monitor thread for 1.5 s. Its
teardown takes TEARDOWN_SECONDS. ``plain`` is the same service started with ``start()``, not ``run_forever()``.
"""

from __future__ import annotations

import os
import socket
import sys
import time

from spoc import AbstractWorker, ProcessWorker, Server, ThreadWorker, hookimpl

ADDRESS = os.environ.get("NOTIFY_SOCKET", "")


def tell(text: str) -> None:
    """A datagram of the test's own to the socket, in order with the server's."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(text.encode(), "\0" + ADDRESS[1:] if ADDRESS.startswith("@") else ADDRESS)
        except OSError:  # no socket (the tests of a socket nobody listens on, and of none)
            pass


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


class Slow(ThreadWorker):
    def setup(self) -> None:
        time.sleep(float(os.environ.get("SETUP_SECONDS", "0.3")))
        tell("X-SETUP-DONE")

    def main(self) -> None:
        say("READY slow")
        if os.environ.get("BLOCK") == "1":
            tell("X-BLOCK")
            self.send_record("test.block")
        while not self.wait(60):
            pass

    def teardown(self) -> None:
        time.sleep(float(os.environ.get("TEARDOWN_SECONDS", "0")))
        say("TEARDOWN slow")


class Child(ProcessWorker):
    def main(self) -> None:
        say(f"CHILD-ENV {os.environ.get('NOTIFY_SOCKET', '-')} {os.environ.get('WATCHDOG_USEC', '-')}")
        while not self.wait(60):
            pass


class HoldsTheMonitor:
    """Holds the monitor thread 1.5 s on a ``test.block`` record: the watchdog's pings must stop meanwhile."""

    @hookimpl
    def worker_record(self, worker: AbstractWorker, topic: str) -> None:
        if topic == "test.block":
            time.sleep(1.5)
            tell("X-UNBLOCKED")


server = Server("notified", plugins=[HoldsTheMonitor()])
server.add_worker(Slow("slow"))
server.add_worker(Child("child", start_method="fork"))


def plain() -> None:
    """The same workers under a plain start(): nothing is sent, as notify_systemd() was not called."""
    alone = Server("plain")
    alone.add_worker(Slow("slow"))
    alone.start()
    time.sleep(1.0)
    tell("X-PLAIN-DONE")
    alone.stop()
    sys.exit(0 if alone.join_all(10) == [] else 1)


if __name__ == "__main__":
    plain()
