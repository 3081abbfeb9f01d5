"""spoc-plugin-restart: supervision for spoc servers.

Restart policies (``never``, ``on-failure``, ``always``), the strategies
one_for_one, one_for_all and rest_for_one, restart intensity (at most N
restarts within T seconds, per worker and per server, past which the server
stops and reports failure), exponential backoff with jitter, and a watchdog
that reports hung workers with their stacks and kills hung process workers.

Installed, it supervises every server with its defaults (``plugin``); give a
server a configured one with ``Server(plugins=[Supervisor(...)])``.
"""

from __future__ import annotations

from ._backoff import Backoff
from ._settings import Policy, Strategy, WorkerSettings
from ._supervisor import ALIVE_TOPIC, HUNG_TOPIC, RestartStatus, Supervisor
from ._watchdog import Hang

__all__ = [
    "ALIVE_TOPIC",
    "HUNG_TOPIC",
    "Backoff",
    "Hang",
    "Policy",
    "RestartStatus",
    "Strategy",
    "Supervisor",
    "WorkerSettings",
    "plugin",
]

plugin = Supervisor()
"""The supervisor the entry point ``restart`` installs: every default."""
