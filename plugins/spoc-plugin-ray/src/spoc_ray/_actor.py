"""The actor that hosts one worker's life: runs it on a thread of its own and streams its events back."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import spoc

__all__ = ["Host"]


class Host:
    """One worker's actor (made a Ray actor class by the backend: threaded, two calls at once).

    `live` runs the worker's `spoc.HostedLife` on a thread and yields each of
    its events as it happens (a streaming generator), the final ``"exit"``
    last; `stop` carries a stop request to it meanwhile.
    """

    def __init__(self, worker: str) -> None:
        self._worker = worker
        self._life: spoc.HostedLife | None = None
        self._stop_asked = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        """What Ray prefixes the actor's output and errors with: ``(spoc:trainer pid=4242)``."""
        return f"spoc:{self._worker}"

    def live(self, life: spoc.HostedLife) -> Iterator[spoc.WorkerEvent]:
        events: queue.SimpleQueue[spoc.WorkerEvent] = queue.SimpleQueue()
        body = threading.Thread(target=life.run, args=(events.put,), name=f"spoc:{life.worker.name}", daemon=True)
        with self._lock:
            self._life = life
            stop_asked = self._stop_asked
        if stop_asked:
            life.stop()
        body.start()
        while True:
            event = events.get()
            yield event
            if event.kind == "exit":
                break
        body.join()

    def stop(self) -> None:
        with self._lock:
            self._stop_asked = True
            life = self._life
        if life is not None:
            life.stop()
