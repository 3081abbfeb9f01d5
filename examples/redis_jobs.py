"""Jobs from a Redis stream: a plain, an async and a failing consumer, and a producer, until Ctrl+C.

Needs spoc-plugin-redis (``pip install ./plugins/spoc-plugin-redis`` from a checkout) and a Redis server:

    SPOC_REDIS_URL=redis://localhost:6379/0 python examples/redis_jobs.py

A thread worker adds a job every 20 ms to the stream ``demo-jobs``. Two process workers resize "images"
(plain ``handle``); an async worker sends "emails", eight at a time. One job in ten fails on its first
delivery and is done on its second; job 99 keeps failing and lands in ``demo-jobs:dead`` with its
error, once for each group. Ctrl+C (SIGINT or SIGTERM) drains what each consumer holds, and
the demo prints how many jobs were done, failed and dead-lettered.
"""

from __future__ import annotations

import asyncio
import os

import redis

from spoc.workers import ProcessWorker, Server, ThreadWorker
from spoc_redis import Job, StreamWorker

URL = os.environ.get("SPOC_REDIS_URL", "redis://localhost:6379/0")
STREAM = "demo-jobs"


def check(job: Job) -> None:
    n = int(job.fields["n"])
    if n == 99 or (n % 10 == 3 and job.deliveries == 1):
        raise RuntimeError(f"job {n} failed on delivery {job.deliveries}")


class Producer(ThreadWorker):
    def main(self) -> None:
        queue = redis.Redis.from_url(URL)
        n = 0
        while not self.wait(0.02):
            queue.xadd(STREAM, {"n": str(n), "kind": "image" if n % 2 else "email"})
            n += 1
        queue.close()


class Resizer(StreamWorker, ProcessWorker):
    stream = STREAM
    group = "resizers"
    max_deliveries = 3

    def handle(self, job: Job) -> None:
        check(job)


class Mailer(StreamWorker, ThreadWorker):
    stream = STREAM
    group = "mailers"  # a second group: every job reaches both groups
    concurrency = 8
    max_deliveries = 3

    async def handle(self, job: Job) -> None:
        await asyncio.sleep(0.01)  # the "send"
        check(job)


if __name__ == "__main__":
    redis.Redis.from_url(URL).delete(STREAM, f"{STREAM}:dead")  # a fresh demo each run
    server = Server("redis-demo")
    server.add_worker(Producer("producer"))
    server.add_worker(Resizer("resizer-1"))
    server.add_worker(Resizer("resizer-2"))
    server.add_worker(Mailer("mailer"))
    print("Consuming demo-jobs. Press Ctrl+C to stop.", flush=True)
    outcome = server.run_forever()
    queue = redis.Redis.from_url(URL, decode_responses=True)
    for group in queue.xinfo_groups(STREAM):
        print(f"group {group['name']}: {group['pending']} pending", flush=True)
    print(f"dead letters: {queue.xlen(f'{STREAM}:dead')}", flush=True)
    print(f"Shutdown {'clean' if outcome.ok else 'NOT clean'} (reason: {outcome.reason})", flush=True)
    raise SystemExit(outcome.exit_code)
