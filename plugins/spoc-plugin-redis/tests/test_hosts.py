"""Three servers as three hosts, sharing one stream: a SIGKILLed host's jobs are taken over, a SIGTERM loses none.

Each host is a program in its own session (its own process group), as it would be on its own machine.
"""

from __future__ import annotations

import collections
import signal
import time
from pathlib import Path

import redis

from harness import App

HOST = Path(__file__).parent / "apps" / "host.py"
JOBS = 2000
CLAIM_IDLE = 2.0


def add_jobs(client: redis.Redis, count: int) -> None:
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        pipe.xadd("jobs", {"n": str(n)})
    pipe.execute()


def start_hosts(app_factory: type[App], record: Path, redis_url: str) -> dict[str, App]:
    env = {"SPOC_REDIS_URL": redis_url, "CLAIM_IDLE": str(CLAIM_IDLE)}
    hosts = {name: app_factory(name, str(record), script=HOST, env=env) for name in ("host-a", "host-b", "host-c")}
    for app in hosts.values():
        app.expect(r"PROGRESS \S+ c1 50")  # every host works on the stream before anything happens to one
        app.expect(r"PROGRESS \S+ c2 50")
    return hosts


def records(record: Path) -> collections.Counter[str]:
    return collections.Counter(line.split()[0] for line in record.read_text().splitlines())


def held_by(client: redis.Redis, host: str) -> int:
    """How many jobs the consumers of `host` hold: delivered, not acknowledged."""
    summary = client.xpending("jobs", "hosts")
    return sum(int(c["pending"]) for c in summary["consumers"] or [] if f"/{host}/" in c["name"])


def test_a_killed_hosts_jobs_are_taken_over(
    app_factory: type[App], redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    record = tmp_path / "done.txt"
    add_jobs(client, JOBS)
    hosts = start_hosts(app_factory, record, redis_url)
    hosts["host-a"].signal_group(signal.SIGKILL)  # the whole host: its server, its fork server, its children
    killed_at = time.monotonic()
    assert hosts["host-a"].wait() == -signal.SIGKILL
    in_flight = held_by(client, "host-a")  # frozen now: no one claims them before claim_idle
    seen: set[str] = set()
    while len(seen) < JOBS:  # the others take over: wait for every job, as each is pushed to the list "done"
        item = client.blpop(["done"], timeout=max(1.0, killed_at + CLAIM_IDLE + 60 - time.monotonic()))
        assert item is not None, f"{JOBS - len(seen)} jobs not done {CLAIM_IDLE + 60:g}s after the kill"
        seen.add(item[1])
    taken = time.monotonic() - killed_at
    for name in ("host-b", "host-c"):
        hosts[name].signal_group(signal.SIGTERM)
    for name in ("host-b", "host-c"):
        assert hosts[name].wait() == 0, hosts[name].stderr
    done = records(record)
    duplicates = sum(count - 1 for count in done.values())
    print(
        f"\n{len(done)} jobs done, {duplicates} twice, {in_flight} in flight on the killed host; "
        f"all done {taken:.1f}s after the kill"
    )
    assert len(done) == JOBS
    assert taken < CLAIM_IDLE + 10  # claim_idle, then the rest of the jobs: a few seconds on a loaded machine
    assert duplicates <= in_flight
    assert int(client.xpending("jobs", "hosts")["pending"]) == 0


def test_a_sigterm_to_every_host_loses_nothing_and_redoes_nothing(
    app_factory: type[App], redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    record = tmp_path / "done.txt"
    add_jobs(client, JOBS)
    hosts = start_hosts(app_factory, record, redis_url)
    for app in hosts.values():
        app.signal_group(signal.SIGTERM)  # as an orchestrator stops a service: to the whole group
    for name, app in hosts.items():
        assert app.wait() == 0, f"{name}\n{app.stderr}"
    done = records(record)
    duplicates = [n for n, count in done.items() if count > 1]
    print(f"\n{len(done)} jobs done before the stop, {len(duplicates)} twice")
    assert duplicates == []
    assert int(client.xpending("jobs", "hosts")["pending"]) == 0
    assert client.xinfo_groups("jobs")[0]["lag"] == JOBS - len(done)  # the rest wait in the stream, undelivered
