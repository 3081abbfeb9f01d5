"""A supervised server whose process worker fails at once, restarted `count` times, then stopped.

    python crash_loop.py (cpu|leak) COUNT

After each failure it prints ``EXITED <restarts> fds=<n> threads=<n> rss_kib=<n> cpu=<s> at=<s>``
about its own process; before stopping, ``ZOMBIES <n>``: its children (and theirs) that
ended unreaped. ``cpu`` caps the backoff at 0.1 s; ``leak`` restarts at once.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from spoc import ProcessWorker, Server, hookimpl
from spoc_restart import Backoff, Supervisor


class FailsAtOnce(ProcessWorker):
    def setup(self) -> None:
        raise RuntimeError("fails at once")

    def main(self) -> None:
        pass


def measure() -> str:
    status = Path("/proc/self/status").read_text()
    threads = re.search(r"Threads:\s+(\d+)", status)
    rss = re.search(r"VmRSS:\s+(\d+)", status)
    times = os.times()
    return (
        f"fds={len(os.listdir('/proc/self/fd'))} threads={threads[1] if threads else '?'} "
        f"rss_kib={rss[1] if rss else '?'} cpu={times.user + times.system:.4f} at={time.monotonic():.4f}"
    )


def zombies() -> int:
    """Processes whose parent is this one or one of its children, in state Z."""
    parents = {os.getpid()}
    table = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            table.append((int(entry), state, int(ppid)))
    parents |= {pid for pid, _, ppid in table if ppid == os.getpid()}
    return sum(1 for _, state, ppid in table if state == "Z" and ppid in parents)


class Markers:
    name = "markers"

    def __init__(self, count: int) -> None:
        self.count = count

    @hookimpl
    def worker_exited(self, server: Server, worker: ProcessWorker) -> None:
        print(f"EXITED {worker.restarts} {measure()}", flush=True)
        if worker.restarts + 1 >= self.count:
            print(f"ZOMBIES {zombies()}", flush=True)
            server.stop()


def main() -> int:
    mode, count = sys.argv[1], int(sys.argv[2])
    backoff = Backoff(initial=0.1, max=0.1, jitter=0.0) if mode == "cpu" else Backoff(initial=0.0, jitter=0.0)
    server = Server("crash-loop", plugins=[Supervisor(start_within=None, backoff=backoff), Markers(count)])
    server.add_worker(FailsAtOnce("crashes"))
    outcome = server.run_forever(shutdown_timeout=10)
    print(f"DONE {outcome.reason}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
