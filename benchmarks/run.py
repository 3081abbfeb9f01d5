"""spoc's benchmarks: every figure next to its raw floor, measured in the same run.

    python benchmarks/run.py [--quick]

- stop latency: a Server with 100 ThreadWorkers and 4 ProcessWorkers idle in
  self.wait(), from stop() until join_all() returns; floor: the same threads
  and processes waiting on bare threading.Event / multiprocessing.Event.
- start latency, per start method: from start() until the worker's "startup"
  event is seen in the parent; floor: a raw multiprocessing.Process that
  sends one message back over a pipe.
- is_running in a hot loop, against reading a plain attribute.
- memory of an idle forked ProcessWorker, against a raw forked multiprocessing.Process.
- hook dispatch: the server's whole per-event path for a record event with 0,
  1 and 5 plugins implementing ``worker_event``, against a bare pluggy call
  of the same implementations.
- event delay: from a process worker's ``send_record()`` (the event's
  timestamp, taken in the child) to the plugin's ``worker_record`` call in the
  parent, one event at a time; floor: a raw forked child writing a timestamp
  to a pipe that a thread of the parent waits on with poll().
- restart (with spoc-plugin-restart installed): from SIGKILL of a supervised
  process worker to its replacement's "startup" event in the parent, zero
  backoff, each kill right after the last startup (a crash loop: the fork
  server's standby, forked 20 ms after a request, is never ready in it);
  floor: a raw parent that waits for its forked child's death with
  waitpid() and forks a new one, which writes to a pipe the parent reads.
- metrics (with spoc-plugin-metrics installed): a labelled user Counter's
  ``inc()`` inside a thread worker and inside a process worker's child,
  against a bare prometheus_client Counter's ``inc()`` timed in the same
  thread; and one scrape of ``/metrics`` over HTTP from a server with 100
  process workers that counted, against prometheus_client's own HTTP server
  exposing a registry with the same families and series.
- logging (with spoc-plugin-logging installed): lines per second from a process worker's print() to the
  server's JSON stream, against a raw pipe a parent thread forwards and against a multiprocessing
  QueueHandler/QueueListener pipeline; the delay of one line; and the stop latency with the plugin writing
  the stream, against it without (see benchmarks/log_lines.py).
- replicas: start() of 32 fork replicas until the last one runs, against cotyledon 2.2's add(Service,
  workers=32) in the same run; and scale(name, n + 8) until the 8th new startup, against 8 add_worker()
  calls (see benchmarks/replicas.py).
- respawn (with spoc-plugin-restart and cotyledon installed): a supervised process worker SIGKILLed, until its
  replacement's body runs, against cotyledon 2.2's ServiceManager respawning the same (see benchmarks/respawn.py).
- recycle (with spoc-plugin-restart installed): from a fork process worker reaching its ``max_jobs`` to its
  fresh instance's "startup", against a plain restart of the same worker (its main() ends cleanly, restarted
  at once under ``restart_policy="always"``) in the same run (see benchmarks/recycle.py).
- control (with spoc-plugin-control installed): ``spoc ctl status`` against a server of 104 workers, from the
  command's start to its output, against a Python start; and the stop latency while another process asks for
  the status 50 times a second, against none asking (see benchmarks/control.py).
- every plugin vs none: a server's boot, a worker added to it and a restart, with every plugin in plugins/
  installed and loaded at its defaults, against autoload off, in the same run (see benchmarks/plugin_costs.py).
- redis (with spoc-plugin-redis installed and redis-server on the machine): jobs per
  second of one process StreamWorker with a no-op handle(), against a raw redis-py loop
  (XREADGROUP of the same batch, XACK per job); and the seconds from the SIGKILL of a
  consumer holding a job to that job done by another consumer, against claim_idle.
- queues (with spoc-plugin-redis, dramatiq and celery installed, redis-server on the machine): jobs per second
  with one worker process and with four, and the time from enqueueing one job into an idle worker to its
  handler's start, against dramatiq and celery on the same redis-server (see benchmarks/job_queues.py).

Each benchmark runs in a fresh interpreter, with installed plugins not loaded; then the core's own
figures (stop, start, is_running, memory, event delay) and the job queues' throughput and latency run
again with every plugin in plugins/ installed and loaded at its defaults, as a user's real setup runs
them. Each figure is the
median of many rounds, spoc's and the floor's taken in turns (a round of one, then a round of the
other), so that a change in the machine's load during the run weighs on both alike. Ratios are what
to compare across machines; absolute times depend on the machine and its load.

The fork start latency also prints a second, informational floor: a raw multiprocessing.Process whose message is
read by a thread started right after the fork. Any supervisor that forks while it is single-threaded
(the only fork that cannot deadlock its child) and then reads on a monitor thread pays that thread's
start-up on the same two cores as the child.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import multiprocessing
import os
import select
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
from plugin_costs import restart_latencies  # benchmarks/ is on sys.path: run.py's own folder

from spoc import ProcessWorker, Server, ThreadWorker, hookimpl, hookspecs
from spoc._events import make_event

THREADS = 100
PROCESSES = 4


# ---------------------------------------------------------------------- workers and raw floors


class IdleThread(ThreadWorker):
    def main(self) -> None:
        self.wait()


class IdleProcess(ProcessWorker):
    def main(self) -> None:
        self.wait()


def raw_thread(event: threading.Event) -> None:
    event.wait()


def raw_process(event: Any, ready: Any) -> None:
    ready.set()
    event.wait()


def raw_send_one(conn: Any) -> None:
    conn.send("startup")


def raw_idle(conn: Any, event: Any) -> None:
    conn.send(os.getpid())
    event.wait()


# ---------------------------------------------------------------------- helpers


class StartupSeen(logging.Handler):
    """Notes when the server's monitor reports a worker's "startup" event (its log line)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: dict[str, float] = {}
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "worker %r started (pid %d)":
            with self.changed:
                self.seen[str(record.args[0])] = time.perf_counter()  # type: ignore[index]
                self.changed.notify_all()

    def wait_for(self, name: str, timeout: float = 30.0) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: name in self.seen, timeout):
                raise TimeoutError(f"no startup event from {name!r}")
            return self.seen.pop(name)


def paired_medians(rounds: int, *measures: Callable[[], float]) -> list[float]:
    """The median of each measure over `rounds` rounds, the measures taken in turns."""
    results: list[list[float]] = [[] for _ in measures]
    for _ in range(rounds):
        for result, measure in zip(results, measures, strict=True):
            result.append(measure())
    return [statistics.median(result) for result in results]


def paired_series_medians(
    rounds: int, scale: float, spoc: Callable[[], list[float]], floor: Callable[[], list[float]]
) -> tuple[float, float]:
    """`paired_medians` of measures that each return a series of timings (the round's median counts), scaled."""
    spoc_median, floor_median = paired_medians(
        rounds, lambda: statistics.median(spoc()), lambda: statistics.median(floor())
    )
    return scale * spoc_median, scale * floor_median


def proc_kib(pid: int, file: str, field: str) -> int:
    """A size in KiB from /proc/<pid>/<file>, e.g. ("status", "VmRSS") or ("smaps_rollup", "Pss")."""
    with open(f"/proc/{pid}/{file}") as lines:
        for line in lines:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/{file}")


def rss_and_pss_kib(pid: int) -> tuple[int, int]:
    return proc_kib(pid, "status", "VmRSS"), proc_kib(pid, "smaps_rollup", "Pss")


# ---------------------------------------------------------------------- the benchmarks


def stop_latency_spoc(plugins: list[object] | None = None, level: int = logging.WARNING) -> float:
    """The stop of 100 thread and 4 process workers, the ``spoc`` logger at `level` during it (WARNING: as a user
    without INFO logging has it; INFO: a record per worker's stop and end, where a handler writes them)."""
    server = Server("bench-stop", plugins=plugins or [])
    ready = StartupSeen()
    logger = logging.getLogger("spoc")
    logger.addHandler(ready)
    try:
        names = [f"t{i}" for i in range(THREADS)] + [f"p{i}" for i in range(PROCESSES)]
        for name in names:
            server.add_worker(IdleThread(name) if name[0] == "t" else IdleProcess(name))
        server.start()
        for name in names:
            ready.wait_for(name)
        logger.setLevel(level)
        began = time.perf_counter()
        server.stop()
        late = server.join_all(30)
        elapsed = time.perf_counter() - began
    finally:
        logger.setLevel(logging.INFO)
        logger.removeHandler(ready)
    assert not late, late
    return elapsed


def stop_latency_floor() -> float:
    context = multiprocessing.get_context("fork")
    thread_event = threading.Event()
    process_event = context.Event()
    threads = [threading.Thread(target=raw_thread, args=(thread_event,), daemon=True) for _ in range(THREADS)]
    readies = [context.Event() for _ in range(PROCESSES)]
    processes = [context.Process(target=raw_process, args=(process_event, r)) for r in readies]
    for t in threads:
        t.start()
    for p in processes:
        p.start()
    for r in readies:
        r.wait()
    began = time.perf_counter()
    thread_event.set()
    process_event.set()
    for t in threads:
        t.join()
    for p in processes:
        p.join()
    elapsed = time.perf_counter() - began
    for p in processes:
        p.close()
    return elapsed


def start_latency_spoc(method: str) -> float:
    seen = StartupSeen()
    logger = logging.getLogger("spoc")
    logger.addHandler(seen)
    try:
        server = Server("bench-start")
        server.add_worker(IdleProcess("w", start_method=method))
        began = time.perf_counter()
        server.start()
        elapsed = seen.wait_for("w") - began
        server.stop()
        server.join_all(30)
    finally:
        logger.removeHandler(seen)
    return elapsed


def start_latency_floor(method: str, read_on_new_thread: bool = False) -> float:
    """A raw multiprocessing.Process sending one message back; with `read_on_new_thread`, the
    message is read by a thread started right after the fork, as a supervisor's monitor reads it."""
    context = multiprocessing.get_context(method)
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=raw_send_one, args=(writer,))
    received = threading.Event()

    def read() -> None:
        reader.recv()
        received.set()

    began = time.perf_counter()
    process.start()
    if read_on_new_thread:
        threading.Thread(target=read, daemon=True).start()
        received.wait()
    else:
        reader.recv()
    elapsed = time.perf_counter() - began
    process.join()
    process.close()
    reader.close()
    writer.close()
    return elapsed


def is_running_cost() -> tuple[float, float]:
    class Plain:
        running = True

    worker = IdleThread("hot")
    plain = Plain()
    loops = 2_000_000
    spoc_time = min(timeit.repeat("w.is_running", globals={"w": worker}, number=loops, repeat=5)) / loops
    plain_time = min(timeit.repeat("p.running", globals={"p": plain}, number=loops, repeat=5)) / loops
    return spoc_time, plain_time


def idle_memory_spoc() -> tuple[int, int]:
    server = Server("bench-memory")
    seen = StartupSeen()
    logger = logging.getLogger("spoc")
    logger.addHandler(seen)
    try:
        worker = IdleProcess("idle", start_method="fork")
        server.add_worker(worker)
        server.start()
        seen.wait_for("idle")
        pid = worker.pid
        assert pid is not None
        memory = rss_and_pss_kib(pid)
        server.stop()
        server.join_all(30)
    finally:
        logger.removeHandler(seen)
    return memory


def idle_memory_floor() -> tuple[int, int]:
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    event = context.Event()
    process = context.Process(target=raw_idle, args=(writer, event))
    process.start()
    pid = reader.recv()
    memory = rss_and_pss_kib(pid)
    event.set()
    process.join()
    process.close()
    return memory


class Noop:
    """A plugin that does nothing, in the hook the dispatch benchmark calls."""

    def __init__(self, index: int) -> None:
        self.name = f"noop-{index}"

    @hookimpl
    def worker_event(self, event: Any) -> None:
        pass


def dispatch_cost(plugins: int) -> tuple[float, float]:
    """Seconds per record event: the server's dispatch, and a bare pluggy call of the same implementations."""
    os.environ["SPOC_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    server = Server("bench-dispatch", plugins=[Noop(i) for i in range(plugins)])
    server._plugins.load()
    bare = pluggy.PluginManager("spoc")
    bare.add_hookspecs(hookspecs)
    for i in range(plugins):
        bare.register(Noop(i), name=f"noop-{i}")
    names = {
        "on_event": server._on_event,
        "hook": bare.hook.worker_event,
        "server": server,
        "worker": (worker := IdleThread("w")),
        "run": worker._run,  # its run record, as the server keeps it
        "event": make_event("w", "record", topic="bench", fields={}),
    }
    loops = 100_000
    spoc = min(timeit.repeat("on_event(run, event)", globals=names, number=loops, repeat=7)) / loops
    floor = min(timeit.repeat("hook(server=server, worker=worker, event=event)", globals=names, number=loops, repeat=7))
    return spoc, floor / loops


class Pinger(ProcessWorker):
    """Sends `rounds` records, each once the parent's hook has acknowledged the one before."""

    def __init__(self, name: str, ack: Any, rounds: int) -> None:
        super().__init__(name, start_method="fork")
        self.ack = ack
        self.rounds = rounds

    def main(self) -> None:
        for _ in range(self.rounds):
            self.send_record("bench.ping")
            self.ack.recv_bytes()


class DelayProbe:
    name = "delay-probe"

    def __init__(self, ack: Any) -> None:
        self.ack = ack
        self.delays: list[float] = []

    @hookimpl
    def worker_record(self, topic: str, event: Any) -> None:
        if topic == "bench.ping":
            self.delays.append(time.monotonic() - event.monotonic)
            self.ack.send_bytes(b"k")


def event_delay_spoc(rounds: int) -> list[float]:
    ack_r, ack_w = multiprocessing.Pipe(duplex=False)
    probe = DelayProbe(ack_w)
    server = Server("bench-delay", plugins=[probe])
    server.add_worker(Pinger("pinger", ack_r, rounds))
    server.start()
    server.join_all(60)
    server.stop()
    for conn in (ack_r, ack_w):
        conn.close()
    return probe.delays


def raw_pinger(conn: Any, ack: Any, rounds: int) -> None:
    for _ in range(rounds):
        conn.send_bytes(struct.pack("d", time.monotonic()))
        ack.recv_bytes()


def event_delay_floor(rounds: int) -> list[float]:
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    ack_r, ack_w = context.Pipe(duplex=False)
    delays: list[float] = []

    def read() -> None:
        poller = select.poll()
        poller.register(reader.fileno(), select.POLLIN)
        for _ in range(rounds):
            poller.poll()
            (sent,) = struct.unpack("d", reader.recv_bytes())
            delays.append(time.monotonic() - sent)
            ack_w.send_bytes(b"k")

    thread = threading.Thread(target=read)
    thread.start()
    process = context.Process(target=raw_pinger, args=(writer, ack_r, rounds))
    process.start()
    thread.join()
    process.join()
    process.close()
    for conn in (reader, writer, ack_r, ack_w):
        conn.close()
    return delays


# ---------------------------------------------------------------------- report


def restart_latency_spoc(cycles: int) -> list[float]:
    logging.getLogger("spoc").setLevel(logging.CRITICAL)  # a log line per kill and per restart: the floor has none
    return restart_latencies(cycles)


def restart_latency_floor(cycles: int) -> list[float]:
    ready_r, ready_w = os.pipe()

    def fork_one() -> int:
        pid = os.fork()
        if pid == 0:
            os.write(ready_w, b"r")
            while True:
                signal.pause()
        return pid

    pid = fork_one()
    os.read(ready_r, 1)
    latencies = []
    for _ in range(cycles):
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pid = fork_one()
        os.read(ready_r, 1)
        latencies.append(time.monotonic() - killed)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(ready_r)
    os.close(ready_w)
    return latencies


def row(name: str, spoc: float, floor: float, unit: str, target: str, ok: bool) -> None:
    ratio = spoc / floor if floor else float("inf")
    verdict = "ok" if ok else "MISSED"
    print(f"{name:<42} {spoc:>10.3f} {floor:>10.3f} {unit:<4} {ratio:>6.2f}x  {target:<22} {verdict}")


def stop_section(rounds: int) -> int:
    spoc_stop, floor_stop = (1000 * t for t in paired_medians(rounds, stop_latency_spoc, stop_latency_floor))
    ok = spoc_stop <= 1.5 * floor_stop and spoc_stop < 50
    row(
        f"stop latency ({THREADS} threads + {PROCESSES} processes)",
        spoc_stop,
        floor_stop,
        "ms",
        "<=1.5x and <50 ms",
        ok,
    )
    return int(not ok)


def start_section(method: str, rounds: int) -> int:
    start_rounds = rounds if method == "spawn" else 5 * rounds
    # fork: the floor forks while single-threaded and reads on a thread started after the fork, as any
    # supervisor with a monitor thread must; the bare multiprocessing.Process read on the forking thread is
    # printed for information. The fork figure has no target any more (its 1.2x was set wrongly and retired):
    # it is printed for information too.
    on_new_thread = method == "fork"
    spoc_start, floor_start = (
        1000 * t
        for t in paired_medians(
            start_rounds, lambda: start_latency_spoc(method), lambda: start_latency_floor(method, on_new_thread)
        )
    )
    ok = on_new_thread or spoc_start <= 1.2 * floor_start
    label = "start latency, fork (floor read on a new thread)" if on_new_thread else f"start latency, {method}"
    row(label, spoc_start, floor_start, "ms", "(information)" if on_new_thread else "<=1.2x", ok)
    if on_new_thread:
        spoc_again, bare_floor = (
            1000 * t
            for t in paired_medians(
                start_rounds, lambda: start_latency_spoc("fork"), lambda: start_latency_floor("fork")
            )
        )
        row("  fork, floor read on the forking thread", spoc_again, bare_floor, "ms", "(information)", True)
    return int(not ok)


def is_running_section(rounds: int) -> int:
    spoc_hot, plain_hot = is_running_cost()
    ok = spoc_hot <= 3 * plain_hot
    row("is_running vs a plain attribute", spoc_hot * 1e9, plain_hot * 1e9, "ns", "<=3x", ok)
    return int(not ok)


def memory_section(rounds: int) -> int:
    spoc_rss, spoc_pss = idle_memory_spoc()
    floor_rss, floor_pss = idle_memory_floor()
    ok = spoc_rss <= 1.1 * floor_rss
    row("idle forked ProcessWorker, RSS", spoc_rss / 1024, floor_rss / 1024, "MiB", "<=1.1x", ok)
    row("idle forked ProcessWorker, PSS", spoc_pss / 1024, floor_pss / 1024, "MiB", "(information)", True)
    return int(not ok)


def dispatch_section(rounds: int) -> int:
    missed = 0
    for plugins in (0, 1, 5):
        spoc, floor = dispatch_cost(plugins)
        # The server's hook call is pluggy's, plus the server's lock and the record of what isolated
        # implementations raised (about 0.7 us); the figure users feel is the event delay below.
        ok = spoc <= 2 * floor
        missed += not ok
        row(f"hook dispatch per event, {plugins} plugins", spoc * 1e9, floor * 1e9, "ns", "<=2x bare pluggy", ok)
    return missed


def event_delay_section(rounds: int) -> int:
    spoc_us, floor_us = paired_series_medians(
        rounds, 1e6, lambda: event_delay_spoc(300), lambda: event_delay_floor(300)
    )
    ok = spoc_us <= 2 * floor_us
    row("process event -> hook in the parent", spoc_us, floor_us, "us", "<=2x raw pipe+poll", ok)
    return int(not ok)


def restart_section(rounds: int) -> int:
    try:
        import spoc_restart  # noqa: F401
    except ImportError:
        print(f"{'restart after SIGKILL':<42} skipped: spoc-plugin-restart is not installed (nox -s bench installs it)")
        return 0
    spoc_ms, floor_ms = paired_series_medians(
        rounds, 1e3, lambda: restart_latency_spoc(20), lambda: restart_latency_floor(20)
    )
    ok = spoc_ms <= 2 * floor_ms
    row("restart: SIGKILL -> replacement's startup", spoc_ms, floor_ms, "ms", "<=2x raw waitpid+fork", ok)
    return int(not ok)


# ---------------------------------------------------------------------- metrics (spoc-plugin-metrics)

INCREMENTS = 200_000


def time_increments(rounds: int) -> dict[str, float]:
    """Seconds per inc() of a user Counter and of a bare prometheus_client Counter, here, taken in turns."""
    import prometheus_client

    from spoc_metrics import Counter

    ours = Counter("bench_jobs_total", "Jobs.", ["queue"]).labels("q")
    bare = prometheus_client.Counter(
        "bare_jobs_total", "Jobs.", ["queue"], registry=prometheus_client.CollectorRegistry()
    ).labels("q")
    spoc_s, floor_s = paired_medians(
        rounds,
        lambda: timeit.timeit(ours.inc, number=INCREMENTS) / INCREMENTS,
        lambda: timeit.timeit(bare.inc, number=INCREMENTS) / INCREMENTS,
    )
    return {"spoc": spoc_s, "floor": floor_s}


class TimesIncrements:
    """Times the increments where the worker lives and sends the figures as a record."""

    send_record: Any
    rounds = 9

    def main(self) -> None:
        self.send_record("bench.increments", **time_increments(self.rounds))


class TimesIncrementsThread(TimesIncrements, ThreadWorker):
    pass


class TimesIncrementsProcess(TimesIncrements, ProcessWorker):
    pass


class Collects:
    """Keeps the records the benchmark's workers send, and counts the metrics batches."""

    name = "bench-collector"

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.batches: set[str] = set()
        self.changed = threading.Condition()

    @hookimpl
    def worker_record(self, worker: Any, topic: str, data: dict[str, Any]) -> None:
        with self.changed:
            if topic == "bench.increments":
                self.records[worker.name] = data
            elif topic == "spoc_metrics.batch":
                self.batches.add(worker.name)
            self.changed.notify_all()

    def wait(self, done: Callable[[], bool]) -> None:
        with self.changed:
            if not self.changed.wait_for(done, 120):
                raise TimeoutError("the benchmark's workers did not report")


def increment_costs(rounds: int) -> dict[str, dict[str, float]]:
    from spoc_metrics import Metrics

    TimesIncrements.rounds = rounds
    collector = Collects()
    server = Server("bench", plugins=[Metrics(port=0, addr="127.0.0.1"), collector])
    server.add_worker(TimesIncrementsThread("thread"))
    server.add_worker(TimesIncrementsProcess("process", start_method="fork"))
    server.start()
    collector.wait(lambda: len(collector.records) == 2)
    server.stop()
    server.join_all()
    return collector.records


class CountsOnce(ProcessWorker):
    def main(self) -> None:
        from spoc_metrics import Counter, Histogram

        Counter("bench_jobs_total", "Jobs.", ["queue"]).labels("q").inc()
        Histogram("bench_job_seconds", "Seconds per job.").observe(0.01)
        self.wait()


def get_seconds(url: str) -> float:
    import urllib.request

    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return time.perf_counter() - began


def bare_registry_like(workers: list[str]) -> Any:
    """A prometheus_client registry with the families and series spoc's page has for `workers`."""
    import prometheus_client as pc

    registry = pc.CollectorRegistry()
    pc.ProcessCollector(registry=registry)
    pc.PlatformCollector(registry=registry)
    pc.GCCollector(registry=registry)
    gauges = ["spoc_worker_up", "spoc_worker_last_seen_timestamp_seconds", "spoc_worker_resident_memory_bytes"]
    counters = ["spoc_worker_cpu_seconds", "spoc_worker_starts", "spoc_worker_restarts"]
    histograms = ["spoc_worker_setup_duration_seconds", "spoc_worker_teardown_duration_seconds", "bench_job_seconds"]
    made = {
        **{name: pc.Gauge(name, "x", ["worker"], registry=registry) for name in gauges},
        **{name: pc.Counter(name, "x", ["worker"], registry=registry) for name in counters},
        **{name: pc.Histogram(name, "x", ["worker"], registry=registry) for name in histograms},
    }
    exits = pc.Counter("spoc_worker_exits", "x", ["worker", "outcome"], registry=registry)
    failures = pc.Counter("spoc_worker_failures", "x", ["worker", "phase"], registry=registry)
    jobs = pc.Counter("bench_jobs", "x", ["worker", "queue"], registry=registry)
    for worker in workers:
        for metric in made.values():
            metric.labels(worker)
        for outcome in ("clean", "failed", "killed", "stopped"):
            exits.labels(worker, outcome)
        for phase in ("setup", "main", "teardown"):
            failures.labels(worker, phase)
        jobs.labels(worker, "q").inc()
    return registry


def scrape_costs(rounds: int, workers: int = 100) -> tuple[float, float]:
    import prometheus_client

    from spoc_metrics import Metrics

    collector = Collects()
    metrics = Metrics(port=0, addr="127.0.0.1", flush_interval=0.05)
    server = Server("bench", plugins=[metrics, collector])
    names = [f"counter-{i}" for i in range(workers)]
    for name in names:
        server.add_worker(CountsOnce(name, start_method="fork"))
    server.start()
    collector.wait(lambda: len(collector.batches) == workers)
    bare, bare_thread = prometheus_client.start_http_server(0, "127.0.0.1", registry=bare_registry_like(names))
    try:
        spoc_url = metrics.url or ""
        bare_url = f"http://127.0.0.1:{bare.server_address[1]}/metrics"
        get_seconds(spoc_url), get_seconds(bare_url)  # warm both up
        spoc_s, floor_s = paired_medians(5 * rounds, lambda: get_seconds(spoc_url), lambda: get_seconds(bare_url))
    finally:
        bare.shutdown()
        bare.server_close()
        bare_thread.join()
        server.stop()
        server.join_all()
    return spoc_s, floor_s


def metrics_section(rounds: int) -> int:
    try:
        import spoc_metrics  # noqa: F401
    except ImportError:
        print(f"{'metrics':<42} skipped: spoc-plugin-metrics is not installed (nox -s bench installs it)")
        return 0
    missed = 0
    for name, figures in sorted(increment_costs(rounds).items(), reverse=True):
        ok = figures["spoc"] <= 3 * figures["floor"]
        missed += not ok
        row(
            f"user counter inc(), {name} worker",
            figures["spoc"] * 1e9,
            figures["floor"] * 1e9,
            "ns",
            "<=3x prometheus_client",
            ok,
        )
    spoc_s, floor_s = scrape_costs(rounds)
    ok = spoc_s <= 3 * floor_s
    missed += not ok
    row("scrape /metrics, 100 process workers", spoc_s * 1e3, floor_s * 1e3, "ms", "<=3x prometheus_client", ok)
    return missed


def redis_section(rounds: int) -> int:
    import redis_streams

    why = redis_streams.missing()
    if why is not None:
        print(f"{'redis jobs/s, claim latency':<42} skipped: {why}")
        return 0
    return redis_streams.measure(rounds, row)  # each round ~2 s; the throughput of a round moves by a quarter


def queues_section(rounds: int) -> int:
    import job_queues
    import redis_streams

    # Run again with every plugin loaded (`CORE_SECTIONS`), as a StreamWorker's users run it (its plugin acknowledges
    # a killed consumer's jobs): the throughput and latency again; the recovery only in the first pass.
    plugins_loaded = os.environ.get("SPOC_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    return job_queues.measure(rounds, row, redis_streams.redis_server, recovery_too=not plugins_loaded)


def logging_section(rounds: int) -> int:
    import log_lines

    why = log_lines.missing()
    if why is not None:
        print(f"{'logging lines/s, delay, stop':<42} skipped: {why}")
        return 0
    return log_lines.measure(rounds, row, paired_medians, stop_latency_spoc)


def ray_section(rounds: int) -> int:
    import ray_actors

    why = ray_actors.missing()
    if why is not None:
        print(f"{'ray: start, record delay':<42} skipped: {why}")
        return 0
    return ray_actors.measure(rounds, row, paired_medians)


def replicas_section(rounds: int) -> int:
    import replicas

    return replicas.measure(rounds, row, paired_medians)


def respawn_section(rounds: int) -> int:
    import respawn

    return respawn.measure(rounds, row, paired_medians)


def recycle_section(rounds: int) -> int:
    import recycle

    return recycle.measure(rounds, row, paired_series_medians)


def control_section(rounds: int) -> int:
    import control

    return control.measure(rounds, row, paired_medians)


def plugin_costs_section(rounds: int) -> int:
    import plugin_costs

    return plugin_costs.measure(rounds, row, paired_medians)


SECTIONS: dict[str, Callable[[int], int]] = {
    "stop": stop_section,
    "start-fork": lambda rounds: start_section("fork", rounds),
    "start-forkserver": lambda rounds: start_section("forkserver", rounds),
    "start-spawn": lambda rounds: start_section("spawn", rounds),
    "is-running": is_running_section,
    "memory": memory_section,
    "dispatch": dispatch_section,
    "event-delay": event_delay_section,
    "restart": restart_section,
    "metrics": metrics_section,
    "redis": redis_section,
    "queues": queues_section,
    "logging": logging_section,
    "ray": ray_section,
    "replicas": replicas_section,
    "recycle": recycle_section,
    "respawn": respawn_section,
    "plugin-costs": plugin_costs_section,
    "control": control_section,
}
"""Each runs in a fresh interpreter: a figure must not depend on what ran before it in the same
process (a fork's cost, for one, moves with the state of the heap the sections before it left)."""


PLUGIN_DISTRIBUTIONS = sorted(path.name for path in (Path(__file__).resolve().parents[1] / "plugins").iterdir())
"""Every plugin in the repository's plugins/ (each directory is its distribution's name)."""

CORE_SECTIONS = (
    "stop",
    "start-fork",
    "start-forkserver",
    "start-spawn",
    "is-running",
    "memory",
    "event-delay",
    "replicas",
    "recycle",
    "respawn",
    "queues",
)
"""The core's figures, and the job queues' throughput and latency, measured a second time with every installed
plugin loaded."""


def installed_plugins() -> dict[str, str]:
    """Distribution name -> "name (entry point)" of the installed spoc plugins."""
    found = {}
    for entry in importlib.metadata.entry_points(group="spoc"):
        distribution = entry.dist.name if entry.dist is not None else entry.value
        found[distribution] = f"{distribution} ({entry.name})"
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--section", choices=sorted(SECTIONS), help="run one benchmark, in this process")
    args = parser.parse_args()
    rounds = 3 if args.quick else 9
    if args.section:
        spoc_logger = logging.getLogger("spoc")
        spoc_logger.setLevel(logging.INFO)  # the startup log line is how the benchmark sees the event
        spoc_logger.propagate = False
        missed = SECTIONS[args.section](rounds)
        sys.stdout.flush()
        return missed

    print(
        f"spoc benchmarks (python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
        f"median of {rounds} rounds, {5 * rounds} for fork and forkserver start; "
        f"each benchmark in a fresh interpreter)",
        flush=True,
    )
    print(f"{'benchmark':<42} {'spoc':>10} {'floor':>10} {'':<4} {'ratio':>7}  {'target':<22} verdict", flush=True)
    quick = ["--quick"] if args.quick else []
    # The core's figures alone: installed plugins stay out. The restart and metrics benchmarks give
    # their plugin to their server themselves.
    environment = {**os.environ, "SPOC_DISABLE_PLUGIN_AUTOLOAD": "1"}
    print("\nwith no plugin loaded", flush=True)
    missed = sum(
        subprocess.run([sys.executable, __file__, "--section", name, *quick], check=False, env=environment).returncode
        for name in SECTIONS
    )
    installed = installed_plugins()
    absent = sorted(set(PLUGIN_DISTRIBUTIONS) - set(installed))
    print(f"\nwith every plugin installed and loaded at its defaults: {', '.join(installed.values()) or 'none'}")
    if absent:
        print(f"  not installed: {', '.join(absent)} (nox -s bench installs every plugin in plugins/)")
    environment = {k: v for k, v in os.environ.items() if k not in ("SPOC_DISABLE_PLUGIN_AUTOLOAD", "SPOC_PLUGINS")}
    missed += sum(
        subprocess.run([sys.executable, __file__, "--section", name, *quick], check=False, env=environment).returncode
        for name in CORE_SECTIONS
    )
    print(f"\n{missed} target(s) missed" if missed else "\nevery target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
