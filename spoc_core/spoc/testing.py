"""pytest fixtures for testing workers and plugins: servers that always stop, and a record of their hooks.

spoc-core registers this module as a pytest plugin (entry point ``pytest11``),
so once spoc is installed the fixtures are there in every test:

``spoc_server``
    A factory: ``spoc_server(*workers, plugins=[...])`` returns a `Server`
    holding those workers (not started yet). At the end of the test every
    server it made is stopped and joined, and the test fails (as an error in
    teardown) when a worker raised, was killed, or would not stop, naming the
    worker and showing its traceback; pass ``allow_errors=True`` when a
    failure is what the test is about.

``spoc_hooks``
    The `HookRecorder` every server made by ``spoc_server`` reports to: each
    call of a hook of the server's process (all but ``worker_stdio``), in
    order, with its arguments; `HookRecorder.wait_for` blocks
    until a given call arrives, so a test synchronises on events, not sleeps.

``spoc_app``
    A factory of `App`: ``spoc_app(script="service.py")`` or
    ``spoc_app(command=["spoc", "run", "tasks:server"])`` runs a program in
    its own session, as a terminal or a service manager does, for tests that
    send it signals and read its output (`App.expect` waits for a line). Each
    program it started is killed with its process group at the end.

``spoc_no_leftovers``
    Fails the test when a process or a thread it started (a worker's child,
    an orphan of one, an endpoint's thread) is still running 10 s after it
    ended; makes the pytest process a child subreaper, so that orphans are
    seen. Opt in for a whole suite from its conftest.py::

        @pytest.fixture(autouse=True)
        def _no_leftovers(spoc_no_leftovers): ...

``spoc_start_method``
    Runs the test once per start method of process workers: ``"fork"``,
    ``"forkserver"`` and ``"spawn"`` (``Job("job", start_method=spoc_start_method)``).

Example::

    def test_my_plugin_counts_starts(spoc_server, spoc_hooks):
        plugin = MyPlugin()
        server = spoc_server(Job("job"), plugins=[plugin])
        server.start()
        spoc_hooks.wait_for("worker_started", worker="job")
        assert plugin.starts == 1
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from ._errors import ErrorRecord
from ._events import WorkerEvent, WorkerExit
from ._plugins import hookimpl
from ._server import DEFAULT_SHUTDOWN_TIMEOUT, Server, StopReason
from ._testing_apps import App, Leftovers, LogLines, children, children_of_this_process, log_lines, wait_gone
from ._worker import AbstractWorker

__all__ = [
    "START_METHODS",
    "App",
    "HookCall",
    "HookRecorder",
    "LogLines",
    "ServerFactory",
    "children",
    "children_of_this_process",
    "log_lines",
    "spoc_app",
    "spoc_hooks",
    "spoc_no_leftovers",
    "spoc_server",
    "spoc_start_method",
    "wait_gone",
]

START_METHODS = ("fork", "forkserver", "spawn")
"""The start methods of process workers, each of which ``spoc_start_method`` runs a test with."""


@dataclass(frozen=True)
class HookCall:
    """One hook call a server made.

    Attributes:
        hook: the hook's name.
        server: the server's name.
        worker: the worker's name, for worker hooks; else None.
        kwargs: every argument of the call, by name (objects, not copies).
    """

    hook: str
    server: str
    worker: str | None
    kwargs: dict[str, Any] = field(repr=False)

    def __getitem__(self, argument: str) -> Any:
        """An argument of the call: ``call["exit_info"].outcome``."""
        return self.kwargs[argument]


class HookRecorder:
    """A plugin that records the hook calls made in the server's process; give it to ``Server(plugins=[...])``.

    Every hook of the server's process but ``worker_stdio`` (implementing it
    would have each process worker's launch ask it for fds). Thread-safe to
    read while servers run. Not called inside process workers' children (it
    implements no child hook).
    """

    name = "spoc.testing.recorder"

    def __init__(self) -> None:
        self.calls: list[HookCall] = []
        self._changed = threading.Condition()

    # ------------------------------------------------------------------ reading

    def of(self, hook: str, **match: Any) -> list[HookCall]:
        """The calls of `hook` so far, in order, that match: see `wait_for`."""
        with self._changed:
            return [call for call in self.calls if call.hook == hook and _matches(call, match)]

    def names(self, worker: str | None = None) -> list[str]:
        """The hook names called so far, in order; only those about `worker` when given."""
        with self._changed:
            return [call.hook for call in self.calls if worker is None or call.worker == worker]

    def wait_for(self, hook: str, timeout: float = 30.0, **match: Any) -> HookCall:
        """Block until `hook` has been called with arguments that match; return that call.

        `match` compares arguments by name: ``worker="job"`` and ``server="s"``
        match names; ``data={"n": 1}`` matches a record whose data holds those
        fields (and maybe others); any other, e.g. ``topic="metrics.inc"`` or
        ``reason="signal"``, must equal the argument. A callable matches when
        it returns True for the argument: ``worker=lambda w: w.restarts == 1``
        gets the worker itself.

        Raises:
            TimeoutError: no such call within `timeout` seconds; the message lists the calls made.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for call in self.calls:
                    if call.hook == hook and _matches(call, match):
                        return call
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    made = ", ".join(f"{c.hook}({c.worker or c.server})" for c in self.calls) or "none"
                    raise TimeoutError(f"no {hook} call matching {match} within {timeout:g}s; calls made: {made}")
                self._changed.wait(remaining)

    def clear(self) -> None:
        """Forget the calls recorded so far."""
        with self._changed:
            self.calls.clear()

    def _add(self, hook: str, server: Server, worker: AbstractWorker | None = None, **kwargs: Any) -> None:
        arguments = {"server": server, **({} if worker is None else {"worker": worker}), **kwargs}
        call = HookCall(hook, server.name, None if worker is None else worker.name, arguments)
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    # ------------------------------------------------------------------ the hooks

    @hookimpl
    def backend_register(self, server: Server) -> None:
        self._add("backend_register", server)

    @hookimpl
    def server_check(self, server: Server) -> None:
        self._add("server_check", server)

    @hookimpl
    def worker_check(self, server: Server, worker: AbstractWorker) -> None:
        self._add("worker_check", server, worker)

    @hookimpl
    def server_start_failed(self, server: Server, error: Exception) -> None:
        self._add("server_start_failed", server, error=error)

    @hookimpl
    def server_starting(self, server: Server) -> None:
        self._add("server_starting", server)

    @hookimpl
    def server_started(self, server: Server) -> None:
        self._add("server_started", server)

    @hookimpl
    def server_reloading(self, server: Server, workers: tuple[AbstractWorker, ...]) -> None:
        self._add("server_reloading", server, workers=workers)

    @hookimpl
    def server_stopping(self, server: Server, reason: StopReason) -> None:
        self._add("server_stopping", server, reason=reason)

    @hookimpl
    def server_stopped(self, server: Server, exits: tuple[WorkerExit, ...]) -> None:
        self._add("server_stopped", server, exits=exits)

    @hookimpl
    def worker_joined(self, server: Server, worker: AbstractWorker) -> None:
        self._add("worker_joined", server, worker)

    @hookimpl
    def worker_event(self, server: Server, worker: AbstractWorker, event: WorkerEvent) -> None:
        self._add("worker_event", server, worker, event=event)

    @hookimpl
    def worker_started(self, server: Server, worker: AbstractWorker, event: WorkerEvent) -> None:
        self._add("worker_started", server, worker, event=event)

    @hookimpl
    def worker_error(self, server: Server, worker: AbstractWorker, error: ErrorRecord, event: WorkerEvent) -> None:
        self._add("worker_error", server, worker, error=error, event=event)

    @hookimpl
    def worker_record(
        self, server: Server, worker: AbstractWorker, topic: str, data: dict[str, Any], event: WorkerEvent
    ) -> None:
        self._add("worker_record", server, worker, topic=topic, data=data, event=event)

    @hookimpl
    def worker_recycling(self, server: Server, worker: AbstractWorker, reason: str) -> None:
        self._add("worker_recycling", server, worker, reason=reason)

    @hookimpl
    def worker_stopping(self, server: Server, worker: AbstractWorker) -> None:
        self._add("worker_stopping", server, worker)

    @hookimpl
    def worker_exited(self, server: Server, worker: AbstractWorker, exit_info: WorkerExit) -> None:
        self._add("worker_exited", server, worker, exit_info=exit_info)


def _matches(call: HookCall, match: dict[str, Any]) -> bool:
    for key, wanted in match.items():
        if callable(wanted) and not isinstance(wanted, type):
            if key not in call.kwargs or not wanted(call.kwargs[key]):
                return False
        elif key == "worker":
            if call.worker != wanted:
                return False
        elif key == "server":
            if call.server != wanted:
                return False
        elif key == "data" and isinstance(wanted, dict) and isinstance(call.kwargs.get("data"), dict):
            data = call.kwargs["data"]
            if any(field not in data or data[field] != value for field, value in wanted.items()):
                return False
        elif key not in call.kwargs or call.kwargs[key] != wanted:
            return False
    return True


class ServerFactory:
    """The ``spoc_server`` fixture: makes servers for one test and stops, joins and checks them after it."""

    def __init__(self, recorder: HookRecorder) -> None:
        self.recorder = recorder
        self.servers: list[tuple[Server, bool]] = []

    def __call__(
        self,
        *workers: AbstractWorker,
        plugins: Sequence[object] = (),
        name: str = "test",
        disable_plugins: Iterable[str] = (),
        allow_errors: bool = False,
    ) -> Server:
        """A new server with `workers` and `plugins` (and the test's `HookRecorder`), not started.

        Args:
            allow_errors: do not fail the test when a worker fails or is killed.
        """
        server = Server(name, plugins=[*plugins, self.recorder], disable_plugins=disable_plugins)
        for worker in workers:
            server.add_worker(worker)
        self.servers.append((server, allow_errors))
        return server

    def finish(self, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> list[str]:
        """Stop and join every server made; return what went wrong, one line (and traceback) each."""
        problems: list[str] = []
        for server, allow_errors in self.servers:
            server.stop()
            late = server.join_all(timeout)
            problems += [f"worker {w.name!r} of server {server.name!r} did not stop within {timeout:g}s" for w in late]
            if allow_errors:
                continue
            for worker in server.workers:
                info = worker.exit_info
                if info is None or info.ok:
                    continue
                problem = (
                    f"worker {worker.name!r} of server {server.name!r} ended {info.outcome} (exitcode {info.exitcode})"
                )
                if info.error is not None:
                    problem += f": {info.error}\n{info.error.traceback}"
                problems.append(problem)
        return problems


@pytest.fixture
def spoc_hooks() -> HookRecorder:
    """The `HookRecorder` that every server made by ``spoc_server`` in this test reports to."""
    return HookRecorder()


@pytest.fixture
def spoc_server(spoc_hooks: HookRecorder) -> Iterator[ServerFactory]:
    """Make servers with ``spoc_server(*workers, plugins=[...])``; each is stopped, joined and checked afterwards."""
    factory = ServerFactory(spoc_hooks)
    yield factory
    problems = factory.finish()
    if problems:
        pytest.fail("spoc: " + "\n\n".join(problems), pytrace=False)


@pytest.fixture
def spoc_app() -> Iterator[Callable[..., App]]:
    """Start programs with ``spoc_app(*args, script=...)`` or ``spoc_app(command=[...])`` (`App`'s arguments);
    each is killed with its process group at the end of the test."""
    started: list[App] = []

    def make(*args: str, **kwargs: Any) -> App:
        app = App(*args, **kwargs)
        started.append(app)
        return app

    yield make
    for app in started:
        app.close()


@pytest.fixture
def spoc_no_leftovers() -> Iterator[None]:
    """Fail the test when a process or a thread it started is still running 10 s after it (`Leftovers`)."""
    check = Leftovers()
    yield
    check.verify()


@pytest.fixture(params=START_METHODS)
def spoc_start_method(request: pytest.FixtureRequest) -> str:
    """Each start method of process workers in turn: ``"fork"``, ``"forkserver"``, ``"spawn"``."""
    return str(request.param)
