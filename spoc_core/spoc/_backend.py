"""Backends: where a worker's life runs, and the one channel it reports through.

A worker names its backend (``worker.backend``); the server gets the
backends from every plugin's ``backend_register`` hook, the core's two
included, and knows them by this interface only. A backend starts a body
and returns a `Runner`; the body's events reach the server through its
`WorkerChannel`, sent from this process or read by the server's monitor
from the fds the backend asks it to watch.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ._aio import uvloop_enabled
from ._errors import BackendError
from ._events import WorkerEvent, make_event
from ._lifecycle import live

if TYPE_CHECKING:
    from ._hosted import HostedLife
    from ._server import Server
    from ._worker import AbstractWorker

__all__ = ["KILL_GRACE", "Backend", "Runner", "WorkerChannel"]

KILL_GRACE = 1.0
"""Seconds between a backend's `Backend.terminate` and `Backend.kill` for a worker past the shutdown deadline."""


class Runner(Protocol):
    """What `Backend.launch` returns: the runner a started worker is waited on with.

    A `threading.Thread` is one; so is a process worker's child runner.
    """

    def is_alive(self) -> bool:
        """Whether the worker's body still runs."""
        ...

    def join(self, timeout: float | None = None) -> None:
        """Wait up to `timeout` seconds (None: forever) for the body to end."""
        ...


class WorkerChannel:
    """The server's end of one worker's run, handed to its backend's `Backend.launch`.

    Everything a worker tells its server goes through here, in order: the
    lifecycle events, the records plugins send (`AbstractWorker.send_record`)
    and the final ``"exit"`` event. A backend whose bodies run elsewhere (a
    child process, a subprocess, another host) has the server's one monitor
    thread read them: `watch` a file descriptor, and send what arrives.

    Outside a server (in the process where a body runs elsewhere, say) make
    one with the function that carries each event: ``WorkerChannel(worker,
    send)``, then `run_life`; `watch` needs a server.
    """

    def __init__(
        self,
        worker: AbstractWorker,
        send: Callable[[WorkerEvent], None],
        *,
        watch: Callable[[int, Callable[[], None]], None] | None = None,
        unwatch: Callable[[int], None] | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.worker = worker
        self.backend = backend
        """The backend the server handed the worker to (None outside a server)."""
        self._send = send
        self._watch = watch
        self._unwatch = unwatch
        self._hosted_life: Callable[[], HostedLife] | None = None  # the server's
        self._stdio: Callable[[], dict[int, int]] | None = None  # the server's

    def send(self, event: WorkerEvent) -> None:
        """Deliver `event` to the server. Thread-safe; events sent from one thread arrive in order.

        A backend that runs bodies out of this process sends each event it
        receives from there, the body's own ``"exit"`` included; a body that
        could not send its end is ended with `exited`.
        """
        self._send(event)

    def exited(self, exitcode: int | None, reason: str | None = None) -> None:
        """Tell the server the body has ended, with its exit code: what ends the worker there. Send it once, last.

        `exitcode`: 0 clean, 1 failed, negative for the signal that killed a
        process, None when unknown. A backend that saw the body end from
        outside (its host died, it could not be started) says why in `reason`
        (`WorkerExit.reason`): the worker then ended ``killed``, unless the
        exit code says it failed. The server builds the worker's `WorkerExit`
        from it, and nowhere else.
        """
        name = self.worker.name
        self._send(
            make_event(name, "exit", exitcode=exitcode)
            if reason is None
            else make_event(name, "exit", exitcode=exitcode, reason=reason)
        )

    def watch(self, fd: int, on_readable: Callable[[], None]) -> None:
        """Have the server's monitor thread call `on_readable()` each time `fd` is readable, until `unwatch`.

        For a backend whose bodies run elsewhere: `fd` is where their events
        arrive (a pipe, a socket) or what turns readable when a body ends (a
        pidfd). The callback runs on the monitor thread, the one that handles
        every event and calls the plugins' hooks, so it reads what is there
        without blocking and returns; what it `send`s is handled right after
        it returns, in order. A callback that raises is logged and its fd is
        no longer watched. Unwatch an fd before closing it.
        """
        if self._watch is None:
            raise RuntimeError(f"worker {self.worker.name!r}: this channel has no server to watch fds")
        self._watch(fd, on_readable)

    def unwatch(self, fd: int) -> None:
        """Stop watching `fd`; from a callback (on the monitor thread) it takes effect at once."""
        if self._unwatch is not None:
            self._unwatch(fd)

    def hosted_life(self) -> HostedLife:
        """The worker's life, for a backend to run in a process it started elsewhere, as in a child (`HostedLife`).

        For a backend that runs `ProcessWorker` bodies in processes the core did
        not start (an actor of a cluster, a process on another host): send the
        result there and call its `HostedLife.run` with a function that carries
        each event back to `send`. It carries the server's plugins that
        implement a hook of the child, and its uvloop setting.
        """
        if self._hosted_life is None:
            raise RuntimeError(f"worker {self.worker.name!r}: this channel has no server to take the life from")
        return self._hosted_life()

    def stdio(self) -> dict[int, int]:
        """The fds the server's plugins give the worker's process as its stdout (1) and stderr (2), or fewer.

        For a backend that starts a process for the body on this host: call
        it once per launch, right before starting the process, and give the
        process each fd at its number (``{1: fd}`` becomes its stdout) before
        anything of the worker runs there. The fds are the backend's from then
        on: close them once the process has its copies, or when it could not
        be started. Empty when no plugin gives any (its ``worker_stdio``
        hook), and outside a server.
        """
        return self._stdio() if self._stdio is not None else {}

    def run_life(self) -> int:
        """Run the worker's whole life on the calling thread; return its exit code (0 clean, 1 failed).

        For backends that run bodies in this process (a thread pool, an event
        loop's executor), and for a process where a body runs on a backend's
        behalf (``WorkerChannel(worker, send).run_life()``): every event, the
        final ``"exit"`` included, goes to `send` as it happens. Only a
        `ThreadWorker` can live this way.
        """
        worker = self.worker
        if not worker._lives_on_a_thread:
            raise TypeError(
                f"worker {worker.name!r} is a {type(worker).__name__}: run_life() runs ThreadWorker "
                f"bodies only (a ProcessWorker's body runs in its own process)"
            )
        return live(worker, self, uvloop_enabled())

    def _carry_stop(self) -> None:
        """`worker.stop()` was called here: have the backend carry it to where the body runs."""
        if self.backend is not None:
            self.backend.stop(self.worker)


class Backend(abc.ABC):
    """Runs the bodies of the workers that name it. Subclass it and return an instance from ``backend_register``.

    A backend instance belongs to one server (``backend_register`` is called
    with the server), so it may keep per-server state. `prepare` runs on the
    thread that called `Server.start()`; `launch` runs under the server's
    lock, one worker at a time, so it must not wait for the worker's events.

    Attributes:
        name: what workers name in their ``backend`` attribute.
        worker_type: the kind of worker it can run; the server refuses to hand
            it any other, naming the worker.
    """

    name: str = ""
    worker_type: type[AbstractWorker]

    def prepare(self, workers: Sequence[AbstractWorker], launch: Callable[[AbstractWorker], bool]) -> None:
        """Called by `Server.start()` before the server starts any thread of its own.

        `workers` are this backend's workers, in the order they were added
        (none, when a backend that runs no worker yet may run some later).
        `launch(worker)` starts one of them right now, through `launch()`
        (it returns False once the server is stopping: start no more). A
        backend that forks launches its workers here, the one time forking
        is safe; any worker not launched here is launched after the server's
        threads have started. The default launches nothing here.
        """

    @abc.abstractmethod
    def launch(self, worker: AbstractWorker, channel: WorkerChannel) -> Runner:
        """Start `worker`'s body and return a runner to wait on it with.

        The body reports through `channel` (an in-process backend calls
        `WorkerChannel.run_life` on the thread it chose). Raise
        `WorkerStartError` naming the worker when it cannot start.
        """

    def stop(self, worker: AbstractWorker) -> None:
        """Called once when `worker.stop()` is called in the server's process (by the server, a signal
        or anyone), after the worker's own stop flag is set.

        A backend whose bodies run elsewhere carries the request there (the
        copy of the worker there must see `stop()`); bodies in this process
        read the flag itself. The default does nothing.
        """

    def terminate(self, worker: AbstractWorker) -> bool:
        """Ask a worker that missed the shutdown deadline to end now.

        Return True when it will end by itself shortly (it then gets
        ``KILL_GRACE`` seconds before `kill`), False when this backend cannot
        end a body against its will (a thread): the server then reports where
        it is stuck and gives up on it. The default returns False.
        """
        return False

    def kill(self, worker: AbstractWorker) -> bool:
        """End a worker at once: after `terminate` returned True and the grace passed, or on a second signal.

        Return False when this backend cannot (the default).
        """
        return False

    def stopping(self) -> None:
        """Called once, when the server's shutdown begins, before its workers are asked to stop.

        No worker of this backend is launched from then on: a backend may
        start letting go of what only launches need, so that `close` has less
        to wait for. The default does nothing.
        """

    def close(self) -> None:
        """Called once every worker of this backend has ended: release what the backend holds."""


def unknown_backend(worker: AbstractWorker, server: Server, registered: Sequence[str]) -> BackendError:
    names = ", ".join(repr(name) for name in sorted(registered)) or "none"
    return BackendError(
        f"Server {server.name!r}: worker {worker.name!r} names backend {worker.backend!r}, which is not "
        f"registered; the registered backends are {names}. Install or give the server the plugin that "
        f"provides it (its backend_register hook), or name one of those in {type(worker).__name__}.backend "
        f"or the worker's plugin_options['backend']."
    )


def wrong_worker_type(worker: AbstractWorker, server: Server, backend: Backend) -> BackendError:
    return BackendError(
        f"Server {server.name!r}: worker {worker.name!r} is a {type(worker).__name__}, but its backend "
        f"{backend.name!r} runs {backend.worker_type.__name__} workers only; subclass "
        f"{backend.worker_type.__name__} or pick another backend"
    )
