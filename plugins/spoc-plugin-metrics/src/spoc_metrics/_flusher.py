"""In a process worker's child: send the batch of counts to the server every so often, and a last time at the end.

An increment in a child costs a dictionary update; the counts reach the
server as one record per flush interval (only when something was counted),
and once more from ``child_stopping``, after teardown, so a worker that stops
cleanly loses nothing. A child killed with SIGKILL loses at most the counts
of its last interval. The flushing thread starts at the child's first sample:
a worker that counts nothing of its own has none, and none delays its start.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from spoc import AbstractWorker, log_extra, start_helper_thread

from ._definitions import defined
from ._routing import child_batch, start_child, stop_child
from ._tally import Tally

__all__ = ["BATCH_TOPIC", "ChildFlusher"]

BATCH_TOPIC = "spoc_metrics.batch"
"""The topic of the records that carry a child's counts to the server."""

logger = logging.getLogger("spoc.metrics")


class ChildFlusher:
    """Owns the child's batch and the thread that flushes it (started at the first sample)."""

    def __init__(self, worker: AbstractWorker, interval: float) -> None:
        self.worker = worker
        self.interval = interval
        self._announced: set[str] = set()
        self._closing = threading.Event()
        self._send_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Start latency: a thread started before "startup" delays it (the plugin-cost benchmark's restart).
        start_child(self._start_thread)

    def _start_thread(self) -> None:
        self._thread = start_helper_thread(self._run, f"spoc-metrics:{self.worker.name}")  # signals: the worker's

    def _run(self) -> None:
        while not self._closing.wait(self.interval):
            tally = child_batch()
            if tally is not None:
                self.flush(tally)

    def flush(self, tally: Tally) -> None:
        """Send what `tally` counted since the last flush, with the definitions the server has not had yet."""
        with self._send_lock:  # one batch at a time: the server merges them in order
            batch = tally.drain()
            if batch is None:
                return
            batch["definitions"] = self._new_definitions(batch)
            try:
                self.worker.send_record(BATCH_TOPIC, **batch)
            except Exception:
                logger.exception(
                    "worker %r: its metrics could not be sent to the server",
                    self.worker.name,
                    extra=log_extra(self.worker.name),
                )

    def _new_definitions(self, batch: dict[str, Any]) -> list[tuple[Any, ...]]:
        names = {sample[0] for samples in batch.values() for sample in samples}
        plain = []
        for name in sorted(names - self._announced):
            definition = defined(name)
            if definition is not None:
                plain.append(definition.plain())
                self._announced.add(name)
        return plain

    def close(self) -> None:
        """Stop the thread and send the last batch (from ``child_stopping``: records still go out)."""
        self._closing.set()
        tally = stop_child()  # no batch is started after this
        if self._thread is not None:
            self._thread.join()
        if tally is not None:
            self.flush(tally)
