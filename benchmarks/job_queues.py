"""spoc-plugin-redis against dramatiq and celery, each on its own Redis broker: one redis-server, one machine.

Each system runs as users run it, a program in a process group of its own: spoc's ``StreamWorker``
(``ProcessWorker``, ``replicas``), ``dramatiq`` (its ``RedisBroker``, its defaults: 8 threads a process)
and ``celery worker`` (Redis broker, ``task_acks_late``; ``--pool solo`` for one process, ``prefork`` for
four). Each job does one Redis write.

- throughput: 10,000 jobs enqueued before the workers start (each system's own producer), then jobs per
  second while the middle 60% of them are done (from the 2,000th to the 8,000th): the start-up of the workers
  (which, for four, overlaps the first jobs of the first one) and the last stragglers left out. With one worker
  process and with four. The systems run in turns (spoc, dramatiq, celery, then again), five turns (two with
  --quick), and each system's median counts; the spread of spoc's ratio over the turns is printed too. Target:
  at least 1.5x the faster peer, in both.
- enqueue to start: one job enqueued into an idle, warmed-up worker, until its handler runs (it writes the
  time); the median of 20. Target: at most the faster peer's.
- recovery: two hosts (process groups) of each system share 2,000 jobs of a few milliseconds; once both have
  done jobs and a quarter are done, one host is SIGKILLed. Printed: the jobs never done within 90 s, and the
  time from the kill until every job was done, each peer with its own recovery at its defaults (dramatiq:
  another worker takes a dead one's messages back after ``heartbeat_timeout``, 60 s, when its maintenance
  runs; celery with ``acks_late``: kombu restores unacknowledged messages). Target: spoc done within
  ``claim_idle`` + 2 s, none lost (``claim_idle`` is 5 s here; its default is 60 s).

Needs redis-server, spoc-plugin-redis, dramatiq and celery (``nox -s bench`` installs the peers, in that
session only); `missing` says why not.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

JOBS = 10_000
FROM, TO = 2_000, 8_000
PEERS = ("dramatiq", "celery")
LATENCY_JOBS = 20
WAIT = 120.0
RECOVERY_JOBS = 2000
CLAIM_IDLE = 5.0
"""spoc's claim_idle in the recovery run (its default is 60 s; the target is claim_idle + 2 s)."""
RECOVERY_WAIT = 90.0
"""How long the recovery run waits for every job: dramatiq's maintenance takes a dead worker's messages back
after its heartbeat_timeout (60 s by default), and only when it runs (at random, one fetch in a thousand)."""

HANDLER = """
import os, time
import redis

_redis = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


def work(kind, n=0):
    if kind == "stamp":
        _redis.rpush("bench:started", repr(time.time()))
    elif kind == "mark":  # a job of the recovery run: a few milliseconds, then marked done by its number
        time.sleep(0.003)
        _redis.sadd("bench:seen", n)
        _redis.hincrby("bench:hosts", os.environ["BENCH_HOST"], 1)
    else:
        _redis.incr("bench:done")
"""

PROGRAMS = {
    "spoc": HANDLER
    + """
from spoc import ProcessWorker, Server
from spoc_redis import StreamWorker, enqueue


class Jobs(StreamWorker, ProcessWorker):
    stream = "bench"
    group = "bench"

    claim_idle = float(os.environ.get("BENCH_CLAIM_IDLE", "60"))

    def handle(self, job):
        work(job.fields["kind"], job.fields["n"])


def send(kind, n=0):
    enqueue("bench", {"kind": kind, "n": n}, redis_url=os.environ["BENCH_REDIS_URL"])


if __name__ == "__main__":
    server = Server("bench-queues")
    processes = int(os.environ["BENCH_PROCESSES"])
    server.add_worker(Jobs("jobs", replicas=processes, plugin_options={"redis_url": os.environ["BENCH_REDIS_URL"]}))
    raise SystemExit(server.run_forever().exit_code)
""",
    "dramatiq": HANDLER
    + """
import dramatiq
from dramatiq.brokers.redis import RedisBroker

dramatiq.set_broker(RedisBroker(url=os.environ["BENCH_REDIS_URL"]))


@dramatiq.actor
def job(kind, n=0):
    work(kind, n)


def send(kind, n=0):
    job.send(kind, n)
""",
    "celery": HANDLER
    + """
from celery import Celery

app = Celery("bench", broker=os.environ["BENCH_REDIS_URL"])
app.conf.task_acks_late = True
app.conf.worker_hijack_root_logger = False


@app.task(name="job")
def job(kind, n=0):
    work(kind, n)


def send(kind, n=0):
    job.delay(kind, n)
""",
}


def missing() -> str | None:
    """Why the comparison cannot run here, or None."""
    import shutil

    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    for module in ("spoc_redis", "dramatiq", "celery"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (nox -s bench installs it)"
    return None


def _command(system: str, processes: int) -> list[str]:
    if system == "spoc":
        return [sys.executable, "bench_spoc.py"]
    if system == "dramatiq":
        return [sys.executable, "-m", "dramatiq", "bench_dramatiq", "--processes", str(processes)]
    pool = ["--pool", "solo"] if processes == 1 else ["--pool", "prefork", "--concurrency", str(processes)]
    return [sys.executable, "-m", "celery", "-A", "bench_celery", "worker", *pool, "--loglevel", "WARNING"]


@contextmanager
def _running(folder: Path, url: str, system: str, processes: int, host: str = "a") -> Iterator[subprocess.Popen[bytes]]:
    """`system`'s workers, running in a process group of their own, ended with SIGTERM to the group."""
    env = {
        **os.environ,
        "BENCH_REDIS_URL": url,
        "BENCH_PROCESSES": str(processes),
        "BENCH_CLAIM_IDLE": str(CLAIM_IDLE),
        "BENCH_HOST": host,
        "PYTHONPATH": str(folder),
    }
    process = subprocess.Popen(
        _command(system, processes),
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _producer(folder: Path, url: str, system: str) -> Callable[..., None]:
    """`system`'s own way to enqueue a job (its module's ``send``), in this process."""
    import importlib

    os.environ["BENCH_REDIS_URL"] = url
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(f"bench_{system}")
    finally:
        sys.path.remove(str(folder))
    send: Callable[..., None] = module.send
    return send


def throughput(folder: Path, url: str, system: str, processes: int) -> float:
    """Jobs per second of `system` with `processes` worker processes, from its `FROM`th job done to its `TO`th."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    send = _producer(folder, url, system)
    for _ in range(JOBS):
        send("count")
    with _running(folder, url, system, processes):
        first = last = None
        deadline = time.monotonic() + WAIT
        while last is None:
            done = int(client.get("bench:done") or 0)
            now = time.perf_counter()
            if first is None and done >= FROM:
                first = now
            if done >= TO:
                last = now
            assert time.monotonic() < deadline, f"{system}: {done} of {JOBS} jobs done in {WAIT:g}s"
            time.sleep(0.001)  # polling a counter every millisecond: at most 0.1% of a 1 s run
    client.close()
    assert first is not None
    return (TO - FROM) / (last - first)


def enqueue_to_start(folder: Path, url: str, system: str) -> float:
    """The median seconds from enqueueing one job into `system`'s idle worker to its handler's start."""
    import redis

    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=None)
    client.flushdb()
    send = _producer(folder, url, system)
    latencies = []
    with _running(folder, url, system, 1):
        send("stamp")  # warm-up: the worker has started and taken a job
        assert client.blpop(["bench:started"], timeout=WAIT) is not None, f"{system} did not start"
        for _ in range(LATENCY_JOBS):
            time.sleep(0.05)  # idle again, waiting for work (the case measured)
            sent = time.time()
            send("stamp")
            started = client.blpop(["bench:started"], timeout=WAIT)
            assert started is not None, f"{system}: a job was not started within {WAIT:g}s"
            latencies.append(float(started[1]) - sent)
    client.close()
    return statistics.median(latencies)


def recovery(folder: Path, url: str, system: str) -> tuple[int, float | None]:
    """Two hosts of `system` share `RECOVERY_JOBS` jobs of a few milliseconds; once both have done jobs and a
    quarter are done, one host's whole process group is SIGKILLed. Returns the jobs never done within
    `RECOVERY_WAIT`, and the seconds from the kill until every job was done (None: not within it)."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    send = _producer(folder, url, system)
    for n in range(RECOVERY_JOBS):
        send("mark", n)
    with _running(folder, url, system, 1, "a") as host, _running(folder, url, system, 1, "b"):
        deadline = time.monotonic() + WAIT
        while int(client.scard("bench:seen")) < RECOVERY_JOBS // 4 or client.hlen("bench:hosts") < 2:
            assert time.monotonic() < deadline, f"{system}: the jobs did not start within {WAIT:g}s"
            time.sleep(0.001)
        os.killpg(host.pid, signal.SIGKILL)  # the host: its server, its fork server, its children
        killed = time.monotonic()
        host.wait()
        took = None
        while time.monotonic() - killed < RECOVERY_WAIT:
            if int(client.scard("bench:seen")) >= RECOVERY_JOBS:
                took = time.monotonic() - killed
                break
            time.sleep(0.01)  # polling a count: a hundredth of a second against tens of seconds
        lost = RECOVERY_JOBS - int(client.scard("bench:seen"))
    client.close()
    return lost, took


def measure(
    rounds: int,
    row: Callable[..., None],
    redis_server: Callable[[], AbstractContextManager[str]],
    recovery_too: bool = True,
) -> int:
    """Print the rows (the recovery's with `recovery_too`: a minute and a half for the peers); return how many
    targets were missed."""
    why = missing()
    if why is not None:
        print(f"{'redis jobs vs dramatiq and celery':<42} skipped: {why}")
        return 0
    missed = 0
    with tempfile.TemporaryDirectory(prefix="bench-queues-") as directory, redis_server() as url:
        folder = Path(directory)
        for system, program in PROGRAMS.items():
            (folder / f"bench_{system}.py").write_text(program)
        for processes in (1, 4):
            runs = max(1, (rounds + 1) // 2)  # each run ~2-5 s a system, celery's 10 s with four processes
            series: dict[str, list[float]] = {system: [] for system in PROGRAMS}
            for _ in range(runs):  # the systems in turns: a change in the machine's load weighs on all alike
                for system in PROGRAMS:
                    series[system].append(throughput(folder, url, system, processes))
            rates = {system: statistics.median(values) for system, values in series.items()}
            peer = max(PEERS, key=rates.__getitem__)
            ok = rates["spoc"] >= 1.5 * rates[peer]
            missed += int(not ok)
            others = ", ".join(f"{name} {rates[name]:.0f}" for name in PEERS)
            turns = [spoc / max(series[name][i] for name in PEERS) for i, spoc in enumerate(series["spoc"])]
            name = f"jobs/s, {processes} process(es) vs {peer}"
            row(name, rates["spoc"], rates[peer], "j/s", ">=1.5x the faster peer", ok)
            print(f"{'':<42} (peers: {others} j/s; each turn {min(turns):.2f}-{max(turns):.2f}x the faster peer)")
        latency = {system: 1e3 * enqueue_to_start(folder, url, system) for system in PROGRAMS}
        peer = min(PEERS, key=latency.__getitem__)
        ok = latency["spoc"] <= latency[peer]
        missed += int(not ok)
        row(f"enqueue to start vs {peer}", latency["spoc"], latency[peer], "ms", "<=1x the faster peer", ok)
        print(f"{'':<42} (peers: {', '.join(f'{name} {latency[name]:.2f}' for name in PEERS)} ms)")
        for system in PROGRAMS if recovery_too else ():
            lost, took = recovery(folder, url, system)
            when = f"all done {took:.1f}s after the kill" if took is not None else f"not all within {RECOVERY_WAIT:g}s"
            print(f"{'a host SIGKILLed: ' + system:<42} {lost} of {RECOVERY_JOBS} jobs not done; {when}")
            if system == "spoc":
                ok = lost == 0 and took is not None and took <= CLAIM_IDLE + 2
                missed += int(not ok)
                row(
                    "recovery after a SIGKILL vs claim_idle",
                    took or RECOVERY_WAIT,
                    CLAIM_IDLE,
                    "s",
                    "<=claim_idle+2s",
                    ok,
                )
    return missed
