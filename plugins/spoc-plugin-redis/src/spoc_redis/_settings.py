"""A stream worker's settings, read with `spoc.settings.read`: its ``plugin_options`` first, then its
attribute, then the default.

Bad values are refused by the plugin's ``worker_check`` hook before any
worker starts (and again where the worker runs, for a server without the
plugin), with a message that names the worker, the setting and its value.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Any

from spoc import settings

__all__ = ["DEFAULT_URL", "URL_ENV", "Settings", "redis_url_or_default", "settings_of", "shown_url"]

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
    "retry_backoff": (0.5, 30.0),
    "retry_on": None,
    "dead_on": (),
    "time_limit": None,
    "time_limit_grace": 5.0,
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
    retry_backoff: tuple[float, float]
    """(first, most): seconds before the first retry, doubling at each, at most `most`."""
    retry_on: tuple[type[Exception], ...] | None
    """The errors retried (None: every one); any other is dead-lettered at its first failure."""
    dead_on: tuple[type[Exception], ...]
    """The errors dead-lettered at once, without retries (before `retry_on` is looked at)."""
    time_limit: float | None = None
    """Seconds a ``handle()`` may run before it is interrupted (None: no limit)."""
    time_limit_grace: float = 5.0
    """Seconds a plain ``handle()`` of a process worker gets after its limit before its child is ended."""

    def dead_at_once(self, error: BaseException) -> str | None:
        """Which setting sends `error` to the dead letters without retries (``"dead_on"``, ``"retry_on"``), or
        None when it is retried until `max_deliveries`."""
        if isinstance(error, self.dead_on):
            return "dead_on"
        if self.retry_on is not None and not isinstance(error, self.retry_on):
            return "retry_on"
        return None


def shown_url(url: str) -> str:
    """`url` as a log line may show it: its password, if any, left out."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}***@{host}"))


def _backoff(worker: Any, value: object) -> tuple[float, float]:
    """`value` as (first, most): two numbers of seconds, 0 <= first <= most."""
    if isinstance(value, tuple | list) and len(value) == 2:
        try:
            first, most = (settings.seconds(worker, "retry_backoff", part, zero=True) for part in value)
        except ValueError:
            pass  # the message below names the whole value
        else:
            if first <= most:
                return first, most
    raise ValueError(
        f"{settings.owner(worker)}: retry_backoff={value!r} must be (first, most): two numbers of seconds with "
        f"0 <= first <= most, such as (0.5, 30.0)"
    )


def _errors(worker: Any, setting: str, value: object, none: str | None = None) -> tuple[type[Exception], ...] | None:
    """`value` (an exception class, or a tuple or list of them) as a tuple; None too, with `none`."""
    if value is None and none is not None:
        return None
    classes = tuple(value) if isinstance(value, tuple | list) else (value,)
    if all(isinstance(each, type) and issubclass(each, Exception) for each in classes):
        return classes
    alternative = f", or None {none}" if none is not None else ""
    raise ValueError(
        f"{settings.owner(worker)}: {setting}={value!r} must be an exception class or a tuple of them, such as "
        f"(ValueError, KeyError){alternative}"
    )


def redis_url_or_default(given: str | None) -> str:
    """`given` when set, else ``SPOC_REDIS_URL``, else `DEFAULT_URL`: where every worker, `enqueue` and
    ``spoc redis`` find Redis."""
    return given or os.environ.get(URL_ENV, "").strip() or DEFAULT_URL


def _read(worker: Any, setting: str) -> Any:
    return settings.read(worker, setting, DEFAULTS.get(setting))


def settings_of(
    worker: Any, *, server: str | None = None, handle_is_async: bool = False, pid: int | None = None
) -> Settings:
    """`worker`'s settings; raises ValueError naming the worker, the setting and its value when one is bad.

    The default consumer name is one per worker of a server process: host
    name, server, worker name (a replica's own) and the server's pid (`pid`, when that is not
    this process). Every run of the worker in that server (a restart, a
    reload, a child of the fork server) is the same consumer, so a fresh run
    takes back at once the jobs its last run held; two copies of a service on
    one host never share one (each would take the other's pending jobs for
    its own). A replica of a worker given a ``consumer`` name is that name
    and ``-<replica>``.
    """
    stream = settings.text(worker, "stream", _read(worker, "stream"))
    group = settings.text(worker, "group", _read(worker, "group"))
    url = redis_url_or_default(_read(worker, "redis_url"))
    consumer = _read(worker, "consumer")
    if consumer is None:
        consumer = f"{socket.gethostname()}/{server or '-'}/{worker.name}/{pid or os.getpid()}"
    elif isinstance(consumer, str) and worker.name != worker.base_name:  # a replica: a consumer of its own
        consumer = f"{consumer}-{worker.replica}"
    concurrency = settings.whole(worker, "concurrency", _read(worker, "concurrency"), least=1)
    if concurrency > 1 and not handle_is_async:
        raise ValueError(
            f"{settings.owner(worker)}: concurrency={concurrency} needs an async def handle(); a plain handle() "
            f"runs one job at a time (run more workers for more at once)"
        )
    dead = _read(worker, "dead_letter_stream")
    return Settings(
        stream=stream,
        group=group,
        redis_url=settings.text(worker, "redis_url", url),
        consumer=settings.text(worker, "consumer", consumer),
        batch=settings.whole(worker, "batch", _read(worker, "batch"), least=1),
        block=settings.seconds(worker, "block", _read(worker, "block")),
        concurrency=concurrency,
        claim_idle=settings.seconds(worker, "claim_idle", _read(worker, "claim_idle")),
        connect_within=settings.seconds(worker, "connect_within", _read(worker, "connect_within")),
        max_deliveries=settings.whole(worker, "max_deliveries", _read(worker, "max_deliveries"), least=1),
        dead_letter_stream=settings.text(worker, "dead_letter_stream", dead if dead is not None else f"{stream}:dead"),
        retry_backoff=_backoff(worker, _read(worker, "retry_backoff")),
        retry_on=_errors(worker, "retry_on", _read(worker, "retry_on"), none="to retry every error"),
        dead_on=_errors(worker, "dead_on", _read(worker, "dead_on")) or (),
        time_limit=settings.seconds(worker, "time_limit", _read(worker, "time_limit"), none="for no limit"),
        time_limit_grace=settings.seconds(worker, "time_limit_grace", _read(worker, "time_limit_grace")),
    )
