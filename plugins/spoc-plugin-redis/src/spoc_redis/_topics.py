"""The topics of the records a stream worker sends to the server's plugins (a module of their own: the plugin
reads them without importing redis, which a server with no stream worker does not need)."""

from __future__ import annotations

__all__ = ["HELD_TOPIC", "RECORD_TOPIC", "STUCK_TOPIC"]

RECORD_TOPIC = "spoc_redis.job"
"""The topic of the record each job's outcome sends to the server's plugins (see `StreamWorker`)."""

HELD_TOPIC = "spoc_redis.held"
"""The topic of the record that says which jobs a stream worker took (``stream``, ``jobs``: their ids), sent
before it handles them; a job is held until its ``done`` or ``dead`` record."""

STUCK_TOPIC = "spoc_redis.stuck"
"""The topic of the record a process worker's child sends when a job is still running ``time_limit_grace`` after
its ``time_limit`` (``stream``, ``job``): the server's plugin recycles the worker (reason ``time_limit``)."""
