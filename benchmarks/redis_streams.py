"""spoc-plugin-redis' figures: jobs per second against a raw redis-py loop, and claim latency against claim_idle.

Needs redis-server (Debian's package) and spoc-plugin-redis; `run.py --section redis` says so and skips
when either is missing. The server it starts listens on a free loopback port, persistence off, its files in
a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from spoc import ProcessWorker, Server, ThreadWorker, hookimpl

JOBS = 5000
BATCH = 10
CLAIM_IDLE = 1.0


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    assert binary is not None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [
                binary,
                *("--port", str(port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            import redis

            client = redis.Redis(port=port)
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    assert time.monotonic() < deadline and process.poll() is None, "redis-server did not start"
                    time.sleep(0.01)
            client.close()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(30)


def fresh_stream(url: str, stream: str, count: int) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.delete(stream)
    client.xgroup_create(stream, "bench", id="0", mkstream=True)
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        pipe.xadd(stream, {"n": str(n)})
    pipe.execute()
    client.close()


def raw_loop(url: str) -> float:
    """Jobs per second of a plain redis-py consumer: XREADGROUP of a batch, XACK per job."""
    import redis

    fresh_stream(url, "raw", JOBS)
    client = redis.Redis.from_url(url, decode_responses=True)
    done = 0
    began = time.perf_counter()
    while done < JOBS:
        for _, entries in client.xreadgroup("bench", "raw-1", {"raw": ">"}, count=BATCH, block=1000) or []:
            for entry_id, _fields in entries:
                client.xack("raw", "bench", entry_id)
                done += 1
    elapsed = time.perf_counter() - began
    client.close()
    return JOBS / elapsed


class Counts:
    """Counts the jobs done, from the records the stream workers send."""

    name = "bench-counts"

    def __init__(self, until: int) -> None:
        self.until = until
        self.done = 0
        self.reached = threading.Event()
        self.when: dict[str, float] = {}

    @hookimpl
    def worker_record(self, topic: str, data: dict[str, Any]) -> None:
        if topic == "spoc_redis.job" and data.get("outcome") == "done":
            self.done += 1
            if self.done >= self.until:
                self.reached.set()


def spoc_consumer(url: str) -> float:
    """Jobs per second of one process StreamWorker with a no-op handle()."""
    from spoc_redis import StreamWorker

    class NoOp(StreamWorker, ProcessWorker):
        stream = "spoc"
        group = "bench"
        batch = BATCH

        def handle(self, job: Any) -> None:
            pass

    fresh_stream(url, "spoc", JOBS)
    counts = Counts(JOBS)
    server = Server("bench-redis", plugins=[counts])
    server.add_worker(NoOp("consumer", start_method="fork", plugin_options={"redis_url": url}))
    began = time.perf_counter()
    server.start()
    assert counts.reached.wait(120), f"{counts.done} of {JOBS} jobs done"
    elapsed = time.perf_counter() - began
    server.stop()
    server.join_all(30)
    return JOBS / elapsed


def claim_latency(url: str) -> float:
    """Seconds from the SIGKILL of a consumer holding a job to that job done by another consumer."""
    import redis

    from spoc_redis import StreamWorker

    class Holds(StreamWorker, ProcessWorker):
        stream = "claims"
        group = "bench"
        claim_idle = CLAIM_IDLE
        restart_policy = "never"  # a takeover by another consumer: a restarted holder would take its job back

        def handle(self, job: Any) -> None:
            redis.Redis.from_url(url).rpush("holding", job.id)
            time.sleep(3600)  # until it is killed

    class Takes(StreamWorker, ThreadWorker):
        stream = "claims"
        group = "bench"
        claim_idle = CLAIM_IDLE

        def handle(self, job: Any) -> None:
            redis.Redis.from_url(url).rpush("taken", job.id)

    client = redis.Redis.from_url(url, decode_responses=True)
    client.delete("claims", "holding", "taken")
    client.xgroup_create("claims", "bench", id="0", mkstream=True)
    logging_off()
    server = Server("bench-claims")
    holder = Holds("holder", start_method="fork", plugin_options={"redis_url": url})
    server.add_worker(holder)
    server.start()
    job = client.xadd("claims", {"n": "1"})
    assert client.blpop(["holding"], timeout=30) is not None
    server.add_worker(Takes("taker", plugin_options={"redis_url": url}))
    killed = time.monotonic()
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    taken = client.blpop(["taken"], timeout=30)
    latency = time.monotonic() - killed
    assert taken is not None and taken[1] == job
    server.stop()
    server.join_all(30)
    client.close()
    return latency


def logging_off() -> None:
    import logging

    logging.getLogger("spoc").setLevel(logging.CRITICAL)  # a killed worker is an error line: expected here


def missing() -> str | None:
    """Why the section cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    try:
        import spoc_redis  # noqa: F401
    except ImportError:
        return "spoc-plugin-redis is not installed (nox -s bench installs it)"
    return None


def measure(rounds: int, row: Callable[..., None]) -> int:
    """Print the rows; return how many targets were missed."""
    with redis_server() as url:
        spoc_rates, raw_rates = [], []
        for _ in range(rounds):
            raw_rates.append(raw_loop(url))
            spoc_rates.append(spoc_consumer(url))
        spoc_rate, raw_rate = statistics.median(spoc_rates), statistics.median(raw_rates)
        ok = spoc_rate >= 0.8 * raw_rate
        row("redis jobs/s, no-op handle, 1 process", spoc_rate, raw_rate, "j/s", ">=0.8x raw redis-py", ok)
        latency = statistics.median(claim_latency(url) for _ in range(3))
        claim_ok = latency <= 1.5 * CLAIM_IDLE
        row("claim after a consumer's SIGKILL", latency, CLAIM_IDLE, "s", "<=1.5x claim_idle", claim_ok)
    return int(not ok) + int(not claim_ok)
