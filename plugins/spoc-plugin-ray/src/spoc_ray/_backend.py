"""The ``ray`` backend: each worker in an actor of its own, its events streamed back, its end seen from outside.

- Start: the worker's `spoc.HostedLife` goes to a new actor (threaded, Ray's
  own restarts off: spoc's supervisor owns restarts), whose ``live`` method
  streams the events back. One thread per worker in the server reads them
  and hands each to the worker's channel, so they reach the hooks through
  the monitor like any backend's.
- Stop: the actor's ``stop`` method (its ``wait()``/``sleep()`` return at
  once). Past the shutdown deadline, `ray.kill`.
- The end: the life's own ``"exit"``; or, when Ray says the actor or its node
  died, an ``"exit"`` with Ray's words as its ``reason`` (outcome ``killed``).
  Either way the actor is then killed, so that none is left in the cluster.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import spoc

from ._actor import Host
from ._settings import placement_of

if TYPE_CHECKING:
    from ._plugin import Ray

__all__ = ["RayBackend", "RayRun"]


class RayRun:
    """One worker's actor, as the server waits on it (a `spoc.Runner`); `pid` is the actor's once it started."""

    def __init__(self, worker: spoc.AbstractWorker, actor: Any, events: Any, channel: spoc.WorkerChannel) -> None:
        self.worker = worker
        self.actor = actor
        self.pid: int | None = None
        self._events = events
        self._channel = channel
        self._reader = spoc.start_helper_thread(self._read, f"spoc-ray:{worker.name}")

    def is_alive(self) -> bool:
        return self._reader.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._reader.join(timeout)

    def _read(self) -> None:
        import ray

        try:
            for ref in self._events:
                event: spoc.WorkerEvent = ray.get(ref)
                if self.pid is None:
                    self.pid = event.pid
                self._channel.send(event)
                if event.kind == "exit":
                    return
            reason = "Ray: the actor's event stream ended without the worker's exit"
        except ray.exceptions.RayError as exc:
            reason = "Ray: " + " ".join(str(exc).split())
        finally:
            _kill(self.actor)  # its life has ended: no actor of ours is left in the cluster
        self._channel.exited(None, reason)


class RayBackend(spoc.Backend):
    """Runs each `spoc.ProcessWorker` whose ``backend`` is ``"ray"`` as a Ray actor (see the module docstring)."""

    name = "ray"
    worker_type = spoc.ProcessWorker

    def __init__(self, plugin: Ray) -> None:
        self._plugin = plugin
        self._runs: dict[str, RayRun] = {}
        self._lock = threading.Lock()
        self._ray: Any = None  # the connected ray module, from this server's first Ray worker on

    def launch(self, worker: spoc.AbstractWorker, channel: spoc.WorkerChannel) -> spoc.Runner:
        options = placement_of(worker).actor_options()  # its settings were checked: worker_check, at every start
        if self._ray is None:
            self._ray = self._plugin.connect()
        ray = self._ray
        host = _host_class(ray)
        life = channel.hosted_life()
        actor = host.options(**options).remote(worker.name)
        try:
            events = actor.live.remote(life)
        except Exception as exc:  # Ray serializes the arguments here
            _kill(actor)
            raise spoc.WorkerStartError(_unpicklable(worker, exc)) from None
        run = RayRun(worker, actor, events, channel)
        with self._lock:
            self._runs[worker.name] = run
        return run

    def stop(self, worker: spoc.AbstractWorker) -> None:
        run = self._runs.get(worker.name)
        if run is not None:
            run.actor.stop.remote()

    def terminate(self, worker: spoc.AbstractWorker) -> bool:
        return self.kill(worker)

    def kill(self, worker: spoc.AbstractWorker) -> bool:
        run = self._runs.get(worker.name)
        if run is None:
            return False
        _kill(run.actor)
        return True

    def close(self) -> None:
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
        for run in runs:
            if run.is_alive():  # a worker given up on: its actor must not outlive the server
                _kill(run.actor)
            run.join(5.0)
        if self._ray is not None:
            self._ray = None
            self._plugin.disconnect()


def _kill(actor: Any) -> None:
    """End `actor` for good (Ray's own restarts are off anyway)."""
    import ray

    ray.kill(actor, no_restart=True)


_remote_host: Any = None


def _host_class(ray: Any) -> Any:
    """The actor class, made once per process (start latency: Ray exports a class's definition each time one is
    made; a class per launch made every start 15-25 ms slower)."""
    global _remote_host
    if _remote_host is None:
        _remote_host = ray.remote(max_concurrency=2, max_restarts=0)(Host)
    return _remote_host


def _unpicklable(worker: spoc.AbstractWorker, exc: Exception) -> str:
    """The message of a worker that cannot be sent to its actor, naming the attribute that does not pickle."""
    from ray import cloudpickle

    culprit = "the worker"
    for attribute, value in worker.__getstate__().items():
        try:
            cloudpickle.dumps(value)
        except Exception as error:  # any failure to pickle names the attribute
            culprit = f"its attribute {attribute!r} ({type(value).__module__}.{type(value).__qualname__}: {error})"
            break
    return (
        f"{type(worker).__name__} {worker.name!r} cannot be sent to its Ray actor: {culprit} does not pickle "
        f"({type(exc).__name__}). Create such objects in setup(), which runs in the actor."
    )
