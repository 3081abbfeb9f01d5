"""A server's replicated workers: how many replicas of each worker it wants, and `Server.scale`.

Every worker a server takes is declared once (`Scaling.declare`) and stands
for its replicas: itself when it is not replicated, else instances built from
its constructor arguments and named ``<name>-1`` ... ``<name>-N``. Scaling up
starts the missing replicas at once; scaling down stops the highest-numbered
first, each within the server's shutdown timeout and then ended as a shutdown
would end it. `Scaling` is a part of `Server` kept in a module of its own: it
acts through the server's lock, run records and start of a worker.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ._errors import SpocError
from ._log_extra import log_extra
from ._overdue import end_overdue

if TYPE_CHECKING:
    from ._run import WorkerRun
    from ._server import Server
    from ._worker import AbstractWorker

__all__ = ["ReplicaCount", "Scaling", "check_count"]

logger = logging.getLogger("spoc")


class ReplicaCount(NamedTuple):
    """How many replicas of a worker its server wants (`desired`) and how many run now (`running`: started
    and not ended or asked to stop by a scale-down)."""

    desired: int
    running: int


@dataclass
class _Declared:
    """A worker as it was added: its replicas are built from its class and constructor arguments (the added
    object itself is not kept once it runs: what its run holds goes with it)."""

    name: str
    kind: type[AbstractWorker]
    init_args: tuple[tuple[Any, ...], dict[str, Any]]
    unused: AbstractWorker | None  # the added object, until it becomes the only replica
    order: int  # its place among the server's workers
    desired: int
    suffixed: bool  # replicas named <name>-<replica> (else the only one keeps the name it was added with)


def _whose(worker: AbstractWorker) -> str:
    """Which replica `worker` is ("replica 2 of worker 'idle'"), or "" for a worker that is not a replica."""
    return "" if worker.name == worker.base_name else f"replica {worker.replica} of worker {worker.base_name!r}"


def check_count(server: str, name: str, count: object) -> int:
    """A replica count for `Server.scale`: an int >= 0; else a TypeError/ValueError naming the value."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(
            f"Server {server!r}: scale({name!r}, ...) takes a whole number of replicas >= 0, got "
            f"{type(count).__name__}: {count!r}"
        )
    if count < 0:
        raise ValueError(f"Server {server!r}: scale({name!r}, {count}): the count must be >= 0 (0 stops every replica)")
    return count


class Scaling:
    """A server's declared workers and their replicas (every method under the server's lock unless it says)."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._declared: dict[str, _Declared] = {}  # by base name, in the order declared
        self._retiring: set[str] = set()  # replicas a scale-down stopped, until they have ended

    def declare(self, worker: AbstractWorker) -> list[AbstractWorker]:
        """Take `worker` as declared; return the instances it stands for (itself, or its replicas)."""
        name, suffixed = worker.base_name, worker.replicas > 1
        declared = _Declared(
            name,
            type(worker),
            worker._init_args,
            None if suffixed else worker,
            len(self._declared),
            worker.replicas,
            suffixed,
        )
        instances = [self._build(declared, replica) for replica in range(1, declared.desired + 1)]
        self._check_names(name, instances)
        self._declared[name] = declared
        return instances

    def forget(self, name: str) -> None:
        """Undo `declare` of `name`, whose instances were refused before they joined the server."""
        del self._declared[name]

    def _check_names(self, name: str | None, instances: list[AbstractWorker]) -> None:
        """ValueError unless `name` (a worker being declared) and `instances` clash with no worker's name."""
        server = self._server
        if name in self._declared:
            raise ValueError(f"Server {server.name!r} already has a worker named {name!r}; names must be unique")
        for instance in instances:
            existing = server._workers.get(instance.name)
            if existing is not None:
                taken, wanted = _whose(existing), _whose(instance)
                raise ValueError(
                    f"Server {server.name!r} already has a worker named {instance.name!r}"
                    f"{f' ({taken})' if taken else ''}{f', the name of {wanted}' if wanted else ''}; names must be "
                    f"unique: rename one of them"
                )

    def replicas_of(self, name: str) -> list[AbstractWorker]:
        """The server's instances of the declared worker `name`, by replica."""
        return sorted((w for w in self._server._workers.values() if w.base_name == name), key=lambda w: w.replica)

    def counts(self) -> dict[str, ReplicaCount]:
        """Each declared worker's desired and running count of replicas, in the order declared."""
        running = dict.fromkeys(self._declared, 0)
        for w in self._server._workers.values():  # one pass: a scrape reads it for every worker
            if w.name in self._server._running and w.exit_info is None and w.name not in self._retiring:
                running[w.base_name] += 1
        return {name: ReplicaCount(declared.desired, running[name]) for name, declared in self._declared.items()}

    def kept_at_zero(self) -> bool:
        """Whether a worker was scaled to 0: the server then keeps running with nothing to run."""
        return any(declared.desired == 0 for declared in self._declared.values())

    def stopped_by_scaling(self, worker: AbstractWorker) -> bool:
        """Whether a scale-down stopped `worker` (until its end has been reported)."""
        return worker.name in self._retiring and self._server._workers.get(worker.name) is worker

    # ------------------------------------------------------------------ scale

    def scale(self, name: str, count: int) -> None:
        """Make the declared worker `name` run `count` replicas: before the server starts, its instances; while
        it runs, the missing ones started at once and those above `count` stopped, the highest first."""
        server = self._server
        declared = self._declared.get(name)
        if declared is None:
            known = ", ".join(repr(n) for n in self._declared) or "none"
            raise ValueError(
                f"Server {server.name!r} has no worker named {name!r} to scale (its workers: {known}); give the "
                f"name a worker was added with, without a replica's -N suffix"
            )
        if server._shutting_down:
            raise SpocError(
                f"Server {server.name!r} is shutting down; worker {name!r} was not scaled to {count} (every "
                f"worker is stopping)"
            )
        before, suffixed = declared.desired, declared.suffixed
        declared.desired = count
        if not server._started:  # how replicas are named is settled when the server starts
            declared.suffixed = suffixed or count > 1
            kept = [
                w for w in self.replicas_of(name) if w.replica <= count and w.name == self._name_of(declared, w.replica)
            ]
            have = {w.replica for w in kept}
            try:
                self._place(kept + [self._build(declared, r) for r in range(1, count + 1) if r not in have], name)
            except ValueError:
                declared.desired, declared.suffixed = before, suffixed
                raise
            return
        if count != before:
            logger.info(
                "server %r: scaling worker %r from %d to %d",
                server.name,
                name,
                before,
                count,
                extra=log_extra(name, server=server.name),
            )
        self._scale_down(declared, count)
        missing = [r for r in range(1, count + 1) if self._missing(name, r)]
        self._start([self._build(declared, r) for r in missing])
        server._changed.notify_all()

    def _missing(self, name: str, replica: int) -> bool:
        """Whether replica `replica` of `name` neither runs, nor waits for a restart, nor is stopping."""
        server = self._server
        worker = next((w for w in self.replicas_of(name) if w.replica == replica), None)
        if worker is None:
            return True
        return (
            worker.exit_info is not None
            and worker.name not in server._running
            and worker.name not in self._retiring
            and worker.name not in server._replacements.pending
        )

    @staticmethod
    def _name_of(declared: _Declared, replica: int) -> str:
        """Replica `replica`'s name: ``<name>-<replica>``, but for the first of a worker that started alone (a
        scale never renames a running worker)."""
        return declared.name if replica == 1 and not declared.suffixed else f"{declared.name}-{replica}"

    def _build(self, declared: _Declared, replica: int) -> AbstractWorker:
        """A new, unstarted instance of replica `replica` of `declared` (the added object, the first time)."""
        worker, declared.unused = declared.unused, None
        if worker is None or self._name_of(declared, replica) != worker.name:
            args, kwargs = declared.init_args
            worker = declared.kind(*args, **kwargs)
            worker._init_args = declared.init_args  # the very same: a fork server rebuilds it from its copy
            worker._become_replica(replica, self._name_of(declared, replica))
        worker._join_server(self._server.name, os.getpid())
        return worker

    def _place(self, instances: list[AbstractWorker], name: str) -> None:
        """Before the server starts: `instances` are the replicas of `name` from now on."""
        server = self._server
        own = {worker.name for worker in self.replicas_of(name)}
        self._check_names(None, [worker for worker in instances if worker.name not in own])
        for worker_name in own:
            del server._workers[worker_name]
        for worker in instances:
            server._workers[worker.name] = worker
        self._order()

    def _order(self) -> None:
        """Keep the server's workers in the order declared, each worker's replicas together and in order."""
        server = self._server
        server._workers = dict(
            sorted(server._workers.items(), key=lambda item: (self._declared[item[1].base_name].order, item[1].replica))
        )

    def _start(self, fresh: list[AbstractWorker]) -> None:
        """Start new replicas on the running server, each in its place among the workers."""
        server = self._server
        for worker in fresh:
            old = server._workers.get(worker.name)
            if old is not None and old.base_name != worker.base_name:
                self._check_names(None, [worker])
            server._backend_for(worker)
            server._plugins.check("worker_check", server=server, worker=worker)
        for worker in fresh:
            server._workers[worker.name] = worker
        self._order()
        for worker in fresh:
            server._hook("worker_joined", worker=worker)
            logger.info(
                "starting worker %r (replica %d of %r)",
                worker.name,
                worker.replica,
                worker.base_name,
                extra=log_extra(worker.name, server=server.name),
            )
            server._start_worker(worker, report_failure=True)

    def _scale_down(self, declared: _Declared, count: int) -> None:
        """Stop the replicas above `count`, the highest first; drop those that do not run."""
        server = self._server
        for worker in reversed(self.replicas_of(declared.name)):
            if worker.replica <= count or worker.name in self._retiring:
                continue
            run = server._runs.get(worker.name)
            if worker.name in server._running and worker.exit_info is None and run is not None and run.worker is worker:
                self._retiring.add(worker.name)
                logger.info(
                    "stopping worker %r (scaled down)", worker.name, extra=log_extra(worker.name, server=server.name)
                )
                if server._monitor is not None:
                    server._monitor.call_later(server.shutdown_timeout, functools.partial(self._overdue, worker))
                worker.stop()
            else:  # ended, or waiting for a restart: it is not replaced
                server._replacements.pending.pop(worker.name, None)
                server._held.release(worker.name)
                del server._workers[worker.name]

    def _waiting_for(self, worker: AbstractWorker) -> WorkerRun | None:
        """`worker`'s run while a scale-down waits for it to end, else None."""
        server = self._server
        with server._lock:
            run = server._runs.get(worker.name)
            if not self.stopped_by_scaling(worker) or run is None or run.worker is not worker:
                return None
            return run if worker.exit_info is None and not server._shutting_down else None

    def _overdue(self, worker: AbstractWorker) -> None:
        """`shutdown_timeout` after a scale-down asked `worker` to stop (on the monitor thread, no lock held)."""
        run = self._waiting_for(worker)
        if run is not None:
            end_overdue(self._server, run, "the scale-down", "it leaves the server", lambda: self._waiting_for(worker))

    def worker_ended(self, worker: AbstractWorker) -> None:
        """`worker` has ended and its end was reported: a replica a scale-down stopped leaves the server or,
        when a later scale wants that replica again, a new instance takes its place."""
        if worker.name not in self._retiring:  # every worker's end passes here: no lock for those no scale stopped
            return
        server = self._server
        with server._locked():
            if not self.stopped_by_scaling(worker):
                return
            self._retiring.discard(worker.name)
            declared = self._declared[worker.base_name]
            if worker.replica > declared.desired or server._shutting_down:
                del server._workers[worker.name]
                server._changed.notify_all()
                return
            try:
                self._start([self._build(declared, worker.replica)])
            except Exception:
                del server._workers[worker.name]
                logger.exception(
                    "worker %r could not be started again",
                    worker.name,
                    extra=log_extra(worker.name, server=server.name),
                )
