"""One "host" of the scheduled-worker tests: a server whose process worker ticks every second, once across hosts.

Usage: ``python ticker.py NAME``, with ``SPOC_REDIS_URL`` set. Each tick pushes ``<at> <host>`` to the list
``began:<host>`` as it begins, then works for 0.3 s, then pushes ``<at> <host>`` to the list ``ticks``. The
worker prints ``READY <host>`` at the end of its setup().
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime

import redis

from spoc.workers import ProcessWorker, Server
from spoc_redis import ScheduledWorker

HOST = sys.argv[1]


class Tick(ScheduledWorker, ProcessWorker):
    every = 1

    def setup(self) -> None:
        self.record = redis.Redis.from_url(os.environ["SPOC_REDIS_URL"])
        print(f"READY {HOST}", flush=True)

    def tick(self, at: datetime) -> None:
        self.record.rpush(f"began:{HOST}", f"{at.timestamp():.3f} {HOST}")
        time.sleep(0.3)
        self.record.rpush("ticks", f"{at.timestamp():.3f} {HOST}")

    def teardown(self) -> None:
        self.record.close()


if __name__ == "__main__":
    server = Server(HOST)
    server.add_worker(Tick("report"))
    sys.exit(server.run_forever().exit_code)
