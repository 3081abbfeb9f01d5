"""Three servers as three hosts, sharing one stream: a SIGKILLed host's jobs are taken over, a SIGTERM loses none.

Each host is a program in its own session (its own process group), as it would be on its own machine.
"""

from __future__ import annotations

import collections
import re
import signal
import time
from pathlib import Path

import redis

from spoc.testing import App

HOST = Path(__file__).parent / "apps" / "host.py"
JOBS = 2000
CLAIM_IDLE = 2.0


def add_jobs(client: redis.Redis, count: int) -> None:
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        pipe.xadd("jobs", {"n": str(n)})
    pipe.execute()


def start_hosts(spoc_app: type[App], record: Path, redis_url: str) -> dict[str, App]:
    env = {"SPOC_REDIS_URL": redis_url, "CLAIM_IDLE": str(CLAIM_IDLE)}
    hosts = {name: spoc_app(name, str(record), script=HOST, env=env) for name in ("host-a", "host-b", "host-c")}
    for app in hosts.values():
        app.expect(r"PROGRESS \S+ c1 50")  # every host works on the stream before anything happens to one
        app.expect(r"PROGRESS \S+ c2 50")
    return hosts


def records(record: Path) -> collections.Counter[str]:
    return collections.Counter(line.split()[0] for line in record.read_text().splitlines())


def held_by(client: redis.Redis, host: str) -> set[str]:
    """The jobs (their ``n``) the consumers of `host` hold: delivered, not acknowledged."""
    held = client.xpending_range("jobs", "hosts", min="-", max="+", count=10_000)
    ids = [entry["message_id"] for entry in held if f"/{host}/" in entry["consumer"]]
    return {client.xrange("jobs", entry_id, entry_id)[0][1]["n"] for entry_id in ids}


def test_a_killed_hosts_jobs_are_taken_over(
    spoc_app: type[App], redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    record = tmp_path / "done.txt"
    add_jobs(client, JOBS)
    hosts = start_hosts(spoc_app, record, redis_url)
    hosts["host-a"].signal_group(signal.SIGKILL)  # the whole host: its server, its fork server, its children
    killed_at = time.monotonic()
    assert hosts["host-a"].wait() == -signal.SIGKILL
    held = held_by(client, "host-a")  # frozen now: no one claims them before claim_idle
    in_flight = len(held)
    seen: set[str] = set()
    # The others take over: wait for every job, and for each job the killed host held to be done by another host
    # (the killed host may have done it and died before its acknowledgement), as each is pushed to "done".
    while len(seen) < JOBS or held:
        item = client.blpop(["done"], timeout=max(1.0, killed_at + CLAIM_IDLE + 60 - time.monotonic()))
        assert item is not None, f"{JOBS - len(seen)} jobs not done, {held} not taken over, 60s after claim_idle"
        n, host = item[1].split()
        seen.add(n)
        if host != "host-a":
            held.discard(n)
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
    # Each takeover is logged once, naming the job, the stream and the consumer it came from (issue 37, point 3).
    takeovers = re.findall(
        r"took over job (\S+) of stream 'jobs' from consumer '[^']*/host-a/[^']*', which held it [\d.]+s without "
        r"acknowledging it \(claim_idle=2: it died or hung\); delivery \d+",
        hosts["host-b"].stderr + hosts["host-c"].stderr,
    )
    assert takeovers and len(takeovers) == len(set(takeovers)) <= in_flight
    assert duplicates <= in_flight
    assert int(client.xpending("jobs", "hosts")["pending"]) == 0


def test_a_sigterm_to_every_host_loses_nothing_and_redoes_nothing(
    spoc_app: type[App], redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    record = tmp_path / "done.txt"
    add_jobs(client, JOBS)
    hosts = start_hosts(spoc_app, record, redis_url)
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
