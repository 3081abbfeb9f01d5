"""Shared fixtures: a real redis-server per test, and spoc.testing's check that no test leaves a process behind.

``redis-server`` comes from Debian's package, which ``.ci/run`` installs. Without it the tests that need it
are skipped, with the reason; under CI (``SPOC_REQUIRE_REDIS=1``) a missing binary fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

__all__ = ["RedisServer", "free_port", "redis_url"]

REDIS_SERVER = shutil.which("redis-server")


@pytest.fixture(autouse=True)
def _no_leftovers(spoc_no_leftovers: None) -> None:
    """No test may leave a process or a thread running (spoc.testing's check)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server on a free loopback port, its files in a temporary directory.

    Persistence is off, unless `persistent`: then every write is in its append-only file before it is
    answered, so a restart on the same port keeps every stream, group and acknowledgement.
    """

    def __init__(self, directory: Path, persistent: bool = False, port: int | None = None) -> None:
        self.persistent = persistent
        if REDIS_SERVER is None:
            if os.environ.get("SPOC_REQUIRE_REDIS") == "1":
                pytest.fail("redis-server is missing, and SPOC_REQUIRE_REDIS=1 (CI) requires it")
            pytest.skip("redis-server is not installed: `apt-get install redis-server` (.ci/run installs it)")
        self.binary = REDIS_SERVER
        self.directory = directory
        self.port = free_port() if port is None else port
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 (kept open by the server's process)
        self.process = subprocess.Popen(
            [
                self.binary,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.directory)),
                *(("--appendonly", "yes", "--appendfsync", "always") if self.persistent else ("--appendonly", "no")),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start:\n{(self.directory / 'redis.log').read_text()}")
                time.sleep(0.01)  # the server is not listening yet: nothing to wait on but the port
            finally:
                client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """The test's redis-server; ``@pytest.mark.persistent`` makes it keep its data across a restart."""
    server = RedisServer(tmp_path, persistent=request.node.get_closest_marker("persistent") is not None)
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()
