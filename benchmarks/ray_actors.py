"""spoc-plugin-ray's figures, on a local Ray (2 CPUs) started once for the section.

- start: `Server.start()` to the worker's "startup" event in the server (the worker's actor made, its life
  sent there, setup() run, the event streamed back); floor: a raw actor made and its first method call
  returning (`ray.get(actor.ping.remote())`).
- record delay: from a timestamp the worker takes in its actor (CLOCK_MONOTONIC, one clock for the machine)
  to its `worker_record` hook in the server, one record each millisecond; floor: a raw actor method call's
  round trip.

Needs ray and spoc-plugin-ray; `run.py --section ray` says so and skips when either is missing.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import spoc
from spoc import ProcessWorker, Server

DELAY_RECORDS = 200


def missing() -> str | None:
    """Why the benchmark cannot run here, or None."""
    for module, distribution in (("ray", "ray"), ("spoc_ray", "spoc-plugin-ray")):
        if importlib.util.find_spec(module) is None:
            return f"{distribution} is not installed (nox -s bench installs it)"
    return None


class Idle(ProcessWorker):
    backend = "ray"

    def main(self) -> None:
        self.wait()


class Stamps(ProcessWorker):
    backend = "ray"

    def main(self) -> None:
        for _ in range(DELAY_RECORDS):
            self.send_record("bench.stamp", at=time.monotonic())
            self.wait(0.001)
        self.wait()


class Seen:
    """A plugin that notes when a worker started, and the delay of each stamped record."""

    name = "bench-seen"

    def __init__(self) -> None:
        self.started = threading.Event()
        self.at = 0.0
        self.delays: list[float] = []
        self.all_in = threading.Event()

    @spoc.hookimpl
    def worker_started(self) -> None:
        self.at = time.perf_counter()
        self.started.set()

    @spoc.hookimpl
    def worker_record(self, topic: str, data: dict[str, Any]) -> None:
        if topic == "bench.stamp":
            self.delays.append(time.monotonic() - data["at"])
            if len(self.delays) == DELAY_RECORDS:
                self.all_in.set()


class Raw:
    def ping(self) -> int:
        return 1


def spoc_start() -> float:
    from spoc_ray import Ray

    seen = Seen()
    server = Server("bench-ray", plugins=[Ray(), seen])
    server.add_worker(Idle("idle"))
    began = time.perf_counter()
    server.start()
    assert seen.started.wait(60)
    elapsed = seen.at - began
    server.stop()
    assert server.join_all(30) == []
    return elapsed


def raw_start() -> float:
    import ray

    raw = ray.remote(Raw)
    began = time.perf_counter()
    actor = raw.remote()
    ray.get(actor.ping.remote())
    elapsed = time.perf_counter() - began
    ray.kill(actor)
    return elapsed


def spoc_delay() -> float:
    from spoc_ray import Ray

    seen = Seen()
    server = Server("bench-ray", plugins=[Ray(), seen])
    server.add_worker(Stamps("stamps"))
    server.start()
    assert seen.all_in.wait(60)
    server.stop()
    assert server.join_all(30) == []
    return statistics.median(seen.delays)


def raw_round_trip() -> float:
    import ray

    actor = ray.remote(Raw).remote()
    ray.get(actor.ping.remote())
    trips = []
    for _ in range(DELAY_RECORDS):
        began = time.perf_counter()
        ray.get(actor.ping.remote())
        trips.append(time.perf_counter() - began)
    ray.kill(actor)
    return statistics.median(trips)


def measure(rounds: int, row: Callable[..., None], paired_medians: Callable[..., list[float]]) -> int:
    """Print the rows (run.py's `row`, measures taken in turns by its `paired_medians`); return the targets missed."""
    import ray

    missed = 0
    with tempfile.TemporaryDirectory(prefix="spoc-bench-ray-") as home:
        os.environ["RAY_TMPDIR"] = home
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=home + "/ray")
        try:
            raw_start()  # the first actor of a fresh Ray starts its worker pool: not part of either figure
            spoc_started, raw_started = paired_medians(rounds, spoc_start, raw_start)
            ok = spoc_started <= 1.2 * raw_started
            missed += not ok
            row("ray: start() -> startup event", spoc_started * 1e3, raw_started * 1e3, "ms", "<=1.2x raw actor", ok)
            delay, trip = paired_medians(rounds, spoc_delay, raw_round_trip)
            ok = delay <= 1.2 * trip
            missed += not ok
            row("ray: record -> hook in the server", delay * 1e6, trip * 1e6, "us", "<=1.2x raw round trip", ok)
        finally:
            ray.shutdown()
    return missed
