"""One redis-py client per URL and timeout, made at its first use and kept for the process: what `enqueue` and
the scrape-time gauges talk to Redis through (redis-py's pool is safe across threads, and starts afresh in a
fork)."""

from __future__ import annotations

import threading

import redis

__all__ = ["shared_client"]

_clients: dict[tuple[str, float | None], redis.Redis] = {}
_lock = threading.Lock()


def shared_client(url: str, timeout: float | None = None) -> redis.Redis:
    """The client of `url` (replies decoded), waiting `timeout` seconds at most to connect and for each reply
    (None: redis-py's default)."""
    with _lock:
        client = _clients.get((url, timeout))
        if client is None:
            waits = {} if timeout is None else {"socket_timeout": timeout, "socket_connect_timeout": timeout}
            client = _clients[url, timeout] = redis.Redis.from_url(url, decode_responses=True, **waits)
        return client
