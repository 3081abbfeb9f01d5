"""A stream worker's settings: read from its ``plugin_options`` first, then its attribute, then the default.

Bad values are refused by the plugin's ``worker_check`` hook before any
worker starts (and again where the worker runs, for a server without the
plugin), with a message that names the worker, the setting and its value.
"""

from __future__ import annotations

import math
import os
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_URL", "URL_ENV", "Settings", "settings_of", "shown_url"]

URL_ENV = "SPOC_REDIS_URL"
DEFAULT_URL = "redis://localhost:6379/0"

DEFAULTS: dict[str, Any] = {
    "redis_url": None,
    "consumer": None,
    "batch": 10,
    "block": 1.0,
    "concurrency": 1,
    "claim_idle": 60.0,
    "connect_within": 10.0,
    "max_deliveries": 5,
    "dead_letter_stream": None,
}
"""Every setting a stream worker takes besides ``stream`` and ``group``, with its default."""


@dataclass(frozen=True)
class Settings:
    """One stream worker's settings, resolved (see the docs page for each)."""

    stream: str
    group: str
    redis_url: str
    consumer: str
    batch: int
    block: float
    concurrency: int
    claim_idle: float
    connect_within: float
    max_deliveries: int
    dead_letter_stream: str


def shown_url(url: str) -> str:
    """`url` as a log line may show it: its password, if any, left out."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}***@{host}"))


def _lookup(worker: Any, setting: str) -> Any:
    options = worker.plugin_options
    return options[setting] if setting in options else getattr(worker, setting, DEFAULTS.get(setting))


def _name(owner: str, setting: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{owner}: {setting}={value!r} must be a non-empty string")
    return value


def _whole(owner: str, setting: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {setting}={value!r} must be a whole number >= 1")
    return value


def _seconds(owner: str, setting: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: {setting}={value!r} must be a number of seconds > 0")
    return float(value)


def settings_of(
    worker: Any, *, server: str | None = None, handle_is_async: bool = False, pid: int | None = None
) -> Settings:
    """`worker`'s settings; raises ValueError naming the worker, the setting and its value when one is bad.

    The default consumer name is one per worker of a server process: host
    name, server, worker name and the server's pid (`pid`, when that is not
    this process). Every run of the worker in that server (a restart, a
    reload, a child of the fork server) is the same consumer, so a fresh run
    takes back at once the jobs its last run held; two copies of a service on
    one host never share one (each would take the other's pending jobs for
    its own).
    """
    owner = f"worker {worker.name!r} ({type(worker).__name__})"
    stream = _name(owner, "stream", _lookup(worker, "stream"))
    group = _name(owner, "group", _lookup(worker, "group"))
    url = _lookup(worker, "redis_url") or os.environ.get(URL_ENV, "").strip() or DEFAULT_URL
    consumer = _lookup(worker, "consumer")
    if consumer is None:
        consumer = f"{socket.gethostname()}/{server or '-'}/{worker.name}/{pid or os.getpid()}"
    concurrency = _whole(owner, "concurrency", _lookup(worker, "concurrency"))
    if concurrency > 1 and not handle_is_async:
        raise ValueError(
            f"{owner}: concurrency={concurrency} needs an async def handle(); a plain handle() runs one job "
            f"at a time (run more workers for more at once)"
        )
    dead = _lookup(worker, "dead_letter_stream")
    return Settings(
        stream=stream,
        group=group,
        redis_url=_name(owner, "redis_url", url),
        consumer=_name(owner, "consumer", consumer),
        batch=_whole(owner, "batch", _lookup(worker, "batch")),
        block=_seconds(owner, "block", _lookup(worker, "block")),
        concurrency=concurrency,
        claim_idle=_seconds(owner, "claim_idle", _lookup(worker, "claim_idle")),
        connect_within=_seconds(owner, "connect_within", _lookup(worker, "connect_within")),
        max_deliveries=_whole(owner, "max_deliveries", _lookup(worker, "max_deliveries")),
        dead_letter_stream=_name(owner, "dead_letter_stream", dead if dead is not None else f"{stream}:dead"),
    )
