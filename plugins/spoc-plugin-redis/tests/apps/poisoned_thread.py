"""A server of one thread consumer of the stream ``jobs`` whose poison job kills the whole server's process.

Usage: ``python poisoned_thread.py``, with ``SPOC_REDIS_URL`` set (``stream_workers`` importable).
"""

from __future__ import annotations

import os
import sys

from spoc.workers import Server
from stream_workers import PoisonedThreadConsumer

if __name__ == "__main__":
    server = Server("poisoned")
    server.add_worker(PoisonedThreadConsumer("consumer", plugin_options={"redis_url": os.environ["SPOC_REDIS_URL"]}))
    sys.exit(server.run_forever().exit_code)
