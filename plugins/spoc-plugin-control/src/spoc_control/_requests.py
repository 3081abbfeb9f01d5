"""What a server answers on its control socket: one request in, one reply out (docs/control.md lists them).

Every reply has ``"ok"``; a reply that is not ok has ``"error"``, one line
that names what is wrong and what to do instead. A request that changes
something waits, unless it says ``"wait": false``, until it is done or
``"timeout"`` seconds have passed, polling the server's `spoc.Server.status`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import spoc
from spoc import AbstractWorker, Server, SpocError, WorkerStatus

__all__ = ["COMMANDS", "DEFAULT_TIMEOUT", "Requests"]

logger = logging.getLogger("spoc")

DEFAULT_TIMEOUT = 60.0
"""Seconds a request waits for what it asked to be done, unless it gives ``"timeout"``."""
_POLL = 0.02
"""Seconds between two looks at the server while a request waits: no operator feels 20 ms."""

_ENDED = ("stopped", "given up")

Done = Callable[[str, WorkerStatus, AbstractWorker | None], str | None]
"""Whether a worker (by name; its status; its current instance, read first) is done, has failed (why), or not yet."""


class RequestError(Exception):
    """A request that cannot be done: its message is the reply's ``"error"``."""


class Requests:
    """The answers of one server's control socket."""

    def __init__(self, server: Server, socket_path: str) -> None:
        self._server = server
        self._socket = socket_path
        self._started_at = time.time()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """The reply to `request`; never raises."""
        command = request.get("command")
        try:
            if not isinstance(command, str):
                raise RequestError('a request is a JSON object with a "command" string, such as {"command": "status"}')
            answer = COMMANDS.get(command)
            if answer is None:
                raise RequestError(f"unknown command {command!r}; the commands are: {', '.join(COMMANDS)}")
            return answer(self, request)
        except RequestError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bug of ours: the client and the server's log hear of it, the server goes on
            logger.exception("control: request %r failed", command, extra=spoc.log_extra(server=self._server.name))
            return {"ok": False, "error": f"the server failed to answer: {type(exc).__name__}: {exc}"}

    # ------------------------------------------------------------------ reading

    def info(self, request: dict[str, Any]) -> dict[str, Any]:
        server = self._server
        return {
            "ok": True,
            "server": server.name,
            "pid": os.getpid(),
            "socket": self._socket,
            "started_at": self._started_at,
            "uptime": time.time() - self._started_at,
            "workers": len(server.workers),
            "spoc": spoc.__version__,
        }

    def status(self, request: dict[str, Any]) -> dict[str, Any]:
        statuses = self._server.status()  # once: the costliest read of a request
        names = set(self._names(request, default_all=True, statuses=statuses))
        return {
            "ok": True,
            "server": self._server.name,
            "workers": [status.to_json() for status in statuses if status.name in names],
        }

    def stacks(self, request: dict[str, Any]) -> dict[str, Any]:
        names = self._names(request, default_all=True)
        stacks = []
        for name in names:
            worker, status = self._worker(name), self._status(name)
            text = None if worker is None else self._server.worker_stack(worker)
            state = "gone" if status is None else status.state
            stacks.append({"name": name, "pid": None if status is None else status.pid, "state": state, "stack": text})
        return {"ok": True, "server": self._server.name, "stacks": stacks}

    # ------------------------------------------------------------------ acting

    def restart(self, request: dict[str, Any]) -> dict[str, Any]:
        names = self._names(request)
        wait, timeout = _wait(request)
        before = {}
        for name in names:
            worker = self._worker(name)
            assert worker is not None
            before[name] = worker
            if worker.exit_info is None:
                if not self._server.recycle_worker(worker, "ctl"):
                    raise RequestError(f"worker {name!r} is {self._state(name)}: it cannot be restarted now")
            else:
                self._start(name)
        return self._outcome(names, wait, timeout, lambda name, status, now: _replaced(before[name], status, now))

    def stop(self, request: dict[str, Any]) -> dict[str, Any]:
        names = self._names(request)
        wait, timeout = _wait(request)
        for name in names:
            worker = self._worker(name)
            assert worker is not None
            if worker.exit_info is None and not self._server.stop_worker(worker):
                state = self._state(name)
                if state != "stopping":
                    raise RequestError(f"worker {name!r} is {state}: it cannot be stopped now; try again")
        return self._outcome(names, wait, timeout, lambda name, status, now: "done" if status.state in _ENDED else None)

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        names = self._names(request)
        wait, timeout = _wait(request)
        started = {}
        for name in names:
            worker = self._worker(name)
            assert worker is not None
            if worker.exit_info is not None and self._state(name) in (*_ENDED, "waiting to restart"):
                started[name] = worker
                self._start(name)

        def done(name: str, status: WorkerStatus, now: AbstractWorker | None) -> str | None:
            if name in started:
                return _replaced(started[name], status, now)
            return _running(status)

        return self._outcome(names, wait, timeout, done)

    def scale(self, request: dict[str, Any]) -> dict[str, Any]:
        name, count = request.get("worker"), request.get("count")
        if not isinstance(name, str) or not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise RequestError('scale takes "worker" (the name a worker was added with) and "count" (an int >= 0)')
        wait, timeout = _wait(request)
        try:
            self._server.scale(name, count)
        except (TypeError, ValueError, SpocError) as exc:
            raise RequestError(str(exc)) from None

        def scaled() -> str | None:
            replicas = [s for s in self._server.status() if s.worker == name]
            running = [s for s in replicas if s.state == "running"]
            if len(running) == count and len(replicas) == count:
                return "done"
            return None

        if wait and not _poll(scaled, timeout, self._server):
            states = ", ".join(f"{s.name} {s.state}" for s in self._server.status() if s.worker == name)
            raise RequestError(f"worker {name!r} did not reach {count} running within {timeout:g}s ({states})")
        return {"ok": True, "server": self._server.name, "worker": name, "count": count}

    def reload(self, request: dict[str, Any]) -> dict[str, Any]:
        wait, timeout = _wait(request)
        self._server.reload()
        if wait and not _poll(lambda: None if self._server.reloading else "done", timeout, self._server):
            raise RequestError(f"the reload did not finish within {timeout:g}s; it goes on")
        return {"ok": True, "server": self._server.name}

    # ------------------------------------------------------------------ helpers

    def _names(
        self, request: dict[str, Any], default_all: bool = False, statuses: tuple[WorkerStatus, ...] | None = None
    ) -> list[str]:
        """The worker names `request` gives (a replicated worker's name stands for all its replicas), in the
        server's order; every name checked (against `statuses`, else the server's status now)."""
        given = request.get("workers", [])
        if not isinstance(given, list) or not all(isinstance(name, str) for name in given):
            raise RequestError('"workers" is a list of worker names, such as ["mailer", "poller-2"]')
        if not given and not default_all:
            raise RequestError("name at least one worker")
        workers = self._server.status() if statuses is None else statuses
        if not given:
            return [status.name for status in workers]
        known = {status.name for status in workers} | {status.worker for status in workers}
        unknown = [name for name in given if name not in known]
        if unknown:
            names = ", ".join(status.name for status in workers) or "none"
            raise RequestError(
                f"server {self._server.name!r} has no worker named {', '.join(map(repr, unknown))} "
                f"(its workers: {names})"
            )
        return [s.name for s in workers if s.name in given or s.worker in given]

    def _worker(self, name: str) -> AbstractWorker | None:
        return next((worker for worker in self._server.workers if worker.name == name), None)

    def _status(self, name: str) -> WorkerStatus | None:
        return next((status for status in self._server.status() if status.name == name), None)

    def _state(self, name: str) -> str:
        status = self._status(name)
        return "gone" if status is None else status.state

    def _start(self, name: str) -> None:
        try:
            self._server.start_worker(name)
        except (ValueError, SpocError) as exc:
            raise RequestError(str(exc)) from None

    def _outcome(self, names: list[str], wait: bool, timeout: float, done: Done) -> dict[str, Any]:
        """Wait (when `wait`) until `done` says each named worker is done (``"done"``) or failed (its reason)."""
        results: dict[str, str | None] = dict.fromkeys(names)

        def all_done() -> str | None:
            current = {worker.name: worker for worker in self._server.workers}  # first: statuses as new or newer
            statuses = {status.name: status for status in self._server.status()}
            for name in names:
                if results[name] is None:
                    status = statuses.get(name)
                    results[name] = "it left the server" if status is None else done(name, status, current.get(name))
            return "done" if all(results.values()) else None

        if wait and not _poll(all_done, timeout, self._server):
            late = [name for name in names if results[name] is None]
            raise RequestError(
                f"{', '.join(f'{name!r} ({self._state(name)})' for name in late)} not done within {timeout:g}s"
            )
        failed = {name: why for name, why in results.items() if why not in (None, "done")}
        if failed:
            raise RequestError("; ".join(f"worker {name!r}: {why}" for name, why in failed.items()))
        statuses = {status.name: status for status in self._server.status()}
        return {
            "ok": True,
            "server": self._server.name,
            "workers": [statuses[name].to_json() for name in names if name in statuses],
        }


COMMANDS: dict[str, Callable[[Requests, dict[str, Any]], dict[str, Any]]] = {
    "info": Requests.info,
    "status": Requests.status,
    "restart": Requests.restart,
    "stop": Requests.stop,
    "start": Requests.start,
    "scale": Requests.scale,
    "reload": Requests.reload,
    "stacks": Requests.stacks,
}


def _wait(request: dict[str, Any]) -> tuple[bool, float]:
    wait, timeout = request.get("wait", True), request.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(wait, bool):
        raise RequestError('"wait" is true or false')
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0:
        raise RequestError('"timeout" is a number of seconds > 0')
    return wait, float(timeout)


def _poll(done: Callable[[], str | None], timeout: float, server: Server) -> bool:
    """Whether `done()` said so within `timeout` seconds.

    Raises:
        RequestError: the server began to shut down meanwhile (nothing will start any more).
    """
    deadline = time.monotonic() + timeout
    while done() is None:
        if server.shutting_down:
            raise RequestError(f"server {server.name!r} is shutting down")
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def _running(status: WorkerStatus) -> str | None:
    """Whether the worker runs (``"done"``), has ended again (why), or is on its way (None)."""
    if status.state == "running":
        return "done"
    if status.state in (*_ENDED, "waiting to restart"):
        return f"it ended ({status.state}): {status.last_exit_line or 'no exit recorded'}"
    return None


def _replaced(old: AbstractWorker, status: WorkerStatus, now: AbstractWorker | None) -> str | None:
    """Whether the worker that was `old` (and is `now`, read before `status`) has been replaced by a fresh
    instance that runs."""
    return None if now is old else _running(status)
