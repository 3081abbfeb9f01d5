"""Respawn against cotyledon: a supervised process worker SIGKILLed, until its replacement's body runs.

As a user tries it: a driver process (``python respawn.py spoc|cotyledon FD``) runs one worker under its
supervisor, spoc's ``Server`` with spoc-plugin-restart at zero backoff (a ``fork`` worker, from the fork
server), or cotyledon 2.2's ``ServiceManager`` (which respawns a dead worker at once). Each run of the body
writes its pid to the pipe FD. The measuring process SIGKILLs the pid it read and times until the next pid
arrives, `CYCLES` times, then ends the driver with SIGTERM.

The kills are `SPACING` apart: cotyledon forks at most one process a second per worker and sleeps 5 s when
asked for more (its guard against a crash loop), and its first respawn waits its ``wait_interval`` (10 ms)
once; so a first kill warms both up and is not counted, and the next come more than a second apart, where
cotyledon respawns at once. spoc's zero backoff needs no spacing; it gets the same.

Needs cotyledon and spoc-plugin-restart (``nox -s bench`` installs both); `missing` says why not.
"""

from __future__ import annotations

import os
import signal
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable

CYCLES = 5
SPACING = 1.05
_PID = struct.Struct("i")


def missing() -> str | None:
    """Why the comparison cannot run here, or None."""
    try:
        import cotyledon  # noqa: F401

        import spoc_restart  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (nox -s bench installs it)"
    return None


def _drive_spoc(fd: int) -> None:
    import logging

    from spoc import ProcessWorker, Server
    from spoc_restart import Backoff, Supervisor

    logging.getLogger("spoc").setLevel(logging.CRITICAL)  # a line per kill and per restart; cotyledon's are quiet too

    class Body(ProcessWorker):
        def main(self) -> None:
            os.write(fd, _PID.pack(os.getpid()))
            self.wait()

    supervisor = Supervisor(start_within=None, backoff=Backoff(initial=0.0, jitter=0.0))
    server = Server("bench-respawn", plugins=[supervisor])
    server.add_worker(Body("body", start_method="fork"))
    server.run_forever()


def _drive_cotyledon(fd: int) -> None:
    import logging

    import cotyledon

    logging.getLogger("cotyledon").setLevel(logging.CRITICAL)

    class Body(cotyledon.Service):  # type: ignore[misc]
        def run(self) -> None:
            os.write(fd, _PID.pack(os.getpid()))
            signal.pause()

    manager = cotyledon.ServiceManager()
    manager.add(Body, workers=1)
    manager.run()


def respawns(peer: str) -> list[float]:
    """Seconds from each SIGKILL of the worker to its replacement's body, `CYCLES` of them, under `peer`."""
    reader, writer = os.pipe()
    driver = subprocess.Popen(
        [sys.executable, __file__, peer, str(writer)],
        pass_fds=(writer,),
        stderr=subprocess.DEVNULL,
    )
    os.close(writer)
    latencies = []
    try:
        pid = _read_pid(reader)
        for cycle in range(CYCLES + 1):
            time.sleep(SPACING)
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            pid = _read_pid(reader)
            if cycle > 0:  # the first warms both up (see the module's docstring)
                latencies.append(time.monotonic() - killed)
    finally:
        driver.send_signal(signal.SIGTERM)
        driver.wait(30)
        os.close(reader)
    return latencies


def _read_pid(fd: int) -> int:
    data = b""
    while len(data) < _PID.size:
        chunk = os.read(fd, _PID.size - len(data))
        if not chunk:
            raise RuntimeError("the driver ended before its worker ran")
        data += chunk
    return int(_PID.unpack(data)[0])


def measure(rounds: int, row: Callable[..., None], paired_medians: Callable[..., list[float]]) -> int:
    why = missing()
    if why is not None:
        print(f"{'respawn after SIGKILL vs cotyledon':<42} skipped: {why}")
        return 0
    spoc_ms, peer_ms = (
        1000 * t
        for t in paired_medians(
            rounds, lambda: statistics.median(respawns("spoc")), lambda: statistics.median(respawns("cotyledon"))
        )
    )
    ok = spoc_ms <= 0.8 * peer_ms
    row("respawn after SIGKILL vs cotyledon", spoc_ms, peer_ms, "ms", "<=0.8x cotyledon", ok)
    return int(not ok)


if __name__ == "__main__":
    {"spoc": _drive_spoc, "cotyledon": _drive_cotyledon}[sys.argv[1]](int(sys.argv[2]))
