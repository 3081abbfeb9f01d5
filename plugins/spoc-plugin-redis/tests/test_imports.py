"""Installed, the plugin joins every server; a server with no stream worker does not pay for redis' import."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROGRAM = """
import sys
from spoc.workers import Server, ThreadWorker

class Once(ThreadWorker):
    def main(self):
        pass

server = Server("plain")
server.add_worker(Once(name="once"))
server.start()
server.join_all(30)
assert "redis" in [info.name for info in server.plugins], server.plugins
print("REDIS-IMPORTED" if "redis" in sys.modules else "REDIS-NOT-IMPORTED")
from spoc_redis import StreamWorker  # the names that need redis still import on first use
print("REDIS-IMPORTED" if "redis" in sys.modules else "REDIS-NOT-IMPORTED", StreamWorker.__name__)
"""


@pytest.mark.timeout(60)
def test_a_server_without_stream_workers_does_not_import_redis() -> None:
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=50, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["REDIS-NOT-IMPORTED", "REDIS-IMPORTED", "StreamWorker"], done.stdout
