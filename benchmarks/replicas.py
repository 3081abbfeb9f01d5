"""Replicas' figures: starting 32 fork replicas against cotyledon, and a scale-up against add_worker().

- start: ``start()`` of a server with one worker of ``replicas = 32`` (``fork``) until the 32nd child runs
  its body, against cotyledon 2.2's ``ServiceManager.add(Service, workers=32)`` and ``run()`` until its 32nd
  child runs ``run()``. Each in a driver process of its own (``python replicas.py spoc|cotyledon FD``), which
  writes the monotonic time just before it starts to the pipe FD, whose every child then writes one byte from
  its body: the measuring process reads them, then ends the driver with SIGTERM.
- scale: on a running server with 2 replicas, ``scale(name, 10)`` until the 8th new replica's startup reached
  the server, against 8 ``add_worker()`` calls of as many workers until their 8 startups, each on a fresh
  server in this process.

Needs cotyledon for the first (``nox -s bench`` installs it); `run.py --section replicas-start` says so and
skips without it.
"""

from __future__ import annotations

import os
import queue
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from spoc import ProcessWorker, Server, hookimpl

REPLICAS = 32
MORE = 8
_TIME = struct.Struct("d")


def missing() -> str | None:
    """Why the cotyledon comparison cannot run here, or None."""
    try:
        import cotyledon  # noqa: F401
    except ImportError:
        return "cotyledon is not installed (nox -s bench installs it)"
    return None


# ---------------------------------------------------------------------- 32 replicas against cotyledon


def _drive_spoc(fd: int) -> None:
    class Body(ProcessWorker):
        replicas = REPLICAS

        def main(self) -> None:
            os.write(fd, b"r")
            self.wait()

    server = Server("bench-replicas")
    server.add_worker(Body("body", start_method="fork"))
    os.write(fd, _TIME.pack(time.monotonic()))
    server.run_forever()


def _drive_cotyledon(fd: int) -> None:
    import cotyledon

    class Body(cotyledon.Service):  # type: ignore[misc]
        def run(self) -> None:
            os.write(fd, b"r")
            self._stop = False
            signal.pause()

    manager = cotyledon.ServiceManager()
    manager.add(Body, workers=REPLICAS)
    os.write(fd, _TIME.pack(time.monotonic()))
    manager.run()


def start_replicas(peer: str) -> float:
    """Seconds from the driver's start of `REPLICAS` workers (spoc or cotyledon) to the last one's body."""
    reader, writer = os.pipe()
    driver = subprocess.Popen(
        [sys.executable, __file__, peer, str(writer)],
        pass_fds=(writer,),
        env={**os.environ, "SPOC_DISABLE_PLUGIN_AUTOLOAD": os.environ.get("SPOC_DISABLE_PLUGIN_AUTOLOAD", "")},
        stderr=subprocess.DEVNULL,
    )
    os.close(writer)
    try:
        began = _TIME.unpack(_read(reader, _TIME.size))[0]
        _read(reader, REPLICAS)
        elapsed = time.monotonic() - began
    finally:
        driver.send_signal(signal.SIGTERM)
        driver.wait(30)
        os.close(reader)
    return elapsed


def _read(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise RuntimeError("the driver ended before its workers ran")
        data += chunk
    return data


# ---------------------------------------------------------------------- scale against add_worker


class Idle(ProcessWorker):
    def main(self) -> None:
        while not self.wait(60):
            pass


class Startups:
    name = "startups"

    def __init__(self) -> None:
        self.seen: queue.Queue[str] = queue.Queue()

    @hookimpl
    def worker_started(self, worker: Any) -> None:
        self.seen.put(worker.name)


def _timed(grow: Callable[[Server], None]) -> float:
    startups = Startups()
    server = Server("bench-scale", plugins=[startups])
    server.add_worker(Idle("idle", start_method="fork", replicas=2))
    server.start()
    for _ in range(2):
        startups.seen.get(timeout=30)
    began = time.perf_counter()
    grow(server)
    for _ in range(MORE):
        startups.seen.get(timeout=30)
    elapsed = time.perf_counter() - began
    server.stop()
    server.join_all(30)
    return elapsed


def scale_up() -> float:
    """Seconds from ``scale("idle", 2 + MORE)`` to the last new replica's startup."""
    return _timed(lambda server: server.scale("idle", 2 + MORE))


def add_workers() -> float:
    """Seconds from the first of `MORE` ``add_worker()`` calls to the last one's startup."""

    def add(server: Server) -> None:
        for i in range(MORE):
            server.add_worker(Idle(f"added-{i}", start_method="fork"))

    return _timed(add)


def measure(
    rounds: int, row: Callable[..., None], paired_medians: Callable[..., list[float]], cotyledon: bool = True
) -> int:
    missed = 0
    if cotyledon:
        why = missing()
        if why is None:
            spoc_ms, peer_ms = (
                1000 * t
                for t in paired_medians(rounds, lambda: start_replicas("spoc"), lambda: start_replicas("cotyledon"))
            )
            ok = spoc_ms <= peer_ms
            missed += not ok
            row(f"start {REPLICAS} fork replicas vs cotyledon", spoc_ms, peer_ms, "ms", "<=1.0x cotyledon", ok)
        else:
            print(f"{'start 32 fork replicas vs cotyledon':<42} skipped: {why}")
    scale_ms, add_ms = (1000 * t for t in paired_medians(rounds, scale_up, add_workers))
    ok = scale_ms <= 1.2 * add_ms
    missed += not ok
    row(f"scale +{MORE} replicas vs {MORE} add_worker()", scale_ms, add_ms, "ms", "<=1.2x add_worker", ok)
    return missed


if __name__ == "__main__":
    {"spoc": _drive_spoc, "cotyledon": _drive_cotyledon}[sys.argv[1]](int(sys.argv[2]))
