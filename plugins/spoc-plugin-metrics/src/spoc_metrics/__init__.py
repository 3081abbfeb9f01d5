"""spoc-plugin-metrics: Prometheus metrics for spoc servers.

Every worker's life (up, starts, exits by outcome, failures by phase,
restarts, setup and teardown durations, last seen, a process worker's CPU and
memory), the server's signals and process, and the counters, gauges and
histograms workers define themselves, thread, process or async alike, and the
gauges other plugins read at scrape time (`ScrapeGauge`, `read_at_scrape`): served
on ``/metrics`` from one registry in the server's process. Children send what
they count to the server over spoc's event channel, in batches.

Installed, it serves every server (``plugin``) on ``SPOC_METRICS_ADDR`` /
``SPOC_METRICS_PORT`` (127.0.0.1:9464 by default, a free port when 9464
is taken); give a server
``Server(plugins=[Metrics(port=...)])`` to choose.
"""

from __future__ import annotations

from ._flusher import BATCH_TOPIC
from ._metrics import Counter, Gauge, Histogram
from ._plugin import Metrics
from ._scrape import ScrapeGauge, ScrapeSample, read_at_scrape
from ._settings import ADDR_ENV, PORT_ENV

__all__ = [
    "ADDR_ENV",
    "BATCH_TOPIC",
    "PORT_ENV",
    "Counter",
    "Gauge",
    "Histogram",
    "Metrics",
    "ScrapeGauge",
    "ScrapeSample",
    "plugin",
    "read_at_scrape",
]

plugin = Metrics()
"""The plugin the entry point ``metrics`` installs: the address and port from the environment, else 127.0.0.1:9464."""
