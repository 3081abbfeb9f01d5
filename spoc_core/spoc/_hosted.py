"""A worker's life as it runs in a process of its own: the core's children, and processes a backend started.

A process worker's child (`_process._child.run_child`) and a process a
backend started elsewhere (a Ray actor, a process on another host) run a
worker's life the same way here: the server's plugins that implement a hook
of the child (``child_starting``, ``child_event``, ``child_stopping``) are
called around it, and `spoc.current_worker` is that worker on every thread
of the process.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from ._aio import uvloop_enabled
from ._backend import WorkerChannel
from ._events import WorkerEvent
from ._lifecycle import LifecycleBody, Send, live, set_process_worker
from ._plugins import ChildPlugins
from ._worker import AbstractWorker

__all__ = ["HostedLife", "hosted_life", "live_as_child"]

ANNOUNCED_KINDS = frozenset({"startup", "error", "stopping", "shutdown"})
"""The events a child's ``child_event`` hooks hear of before they are sent: the lifecycle's, not records."""


def live_as_child(
    worker: AbstractWorker, send: Send, plugins: ChildPlugins, server: tuple[str, int], use_uvloop: bool
) -> int:
    """Run `worker`'s lifecycle on the calling thread of a process it has to itself, each event to `send`, the
    child hooks of `plugins` around it (`server`: the server's name and pid, for them); return its exit code (0
    clean, 1 failed). No "exit" event: the caller's."""
    server_name, server_pid = server

    def call_plugins(hook: str) -> None:
        plugins.call(hook, worker=worker, server_name=server_name, server_pid=server_pid)

    if plugins and "child_event" in plugins.prepare().implemented:
        send_now = send

        def send(event: WorkerEvent) -> None:
            if event.kind in ANNOUNCED_KINDS:
                plugins.call("child_event", worker=worker, event=event)
            send_now(event)

    worker._join_server(server_name, server_pid)
    set_process_worker(worker)
    last_words = None
    if plugins:
        worker._send = send
        call_plugins("child_starting")
        last_words = functools.partial(call_plugins, "child_stopping")
    return LifecycleBody(worker, send, last_words=last_words).run(use_uvloop)


class HostedLife:
    """A worker's life, to run in a process a backend started for it elsewhere, as in a process worker's child.

    For a backend whose bodies run in processes the core did not start (an
    actor of a cluster, a process on another host): `WorkerChannel.hosted_life`
    makes one in the server; the backend sends it there (it pickles with the
    worker, whose state of the run stays behind, as under spawn) and calls
    `run` on the thread that is to run the body. The server's plugins that
    implement a hook of the child are called there as in a child, so a
    plugin's in-child part (spoc-plugin-metrics' batches, say) works on any
    backend.

    Attributes:
        worker: the worker whose life it is.
        server_name: the name of the server it belongs to.
        server_pid: the pid of that server's process.
    """

    def __init__(
        self, worker: AbstractWorker, server_name: str, plugins: ChildPlugins, use_uvloop: bool, server_pid: int
    ) -> None:
        self.worker = worker
        self.server_name = server_name
        self.server_pid = server_pid
        self._plugins = plugins
        self._use_uvloop = use_uvloop

    def __repr__(self) -> str:
        return f"<HostedLife of worker {self.worker.name!r} of server {self.server_name!r}>"

    def run(self, send: Callable[[WorkerEvent], None]) -> int:
        """Run the worker's whole life on the calling thread; return its exit code (0 clean, 1 failed).

        Call it once, in the process that hosts the worker (that process is
        the worker's: `spoc.current_worker` is the worker on all its threads).
        Every event goes to `send` as it happens, the final ``"exit"`` (with
        its ``exitcode``) included; the backend carries them to the server's
        `WorkerChannel.send`. `send` is called from the body's thread and from
        any thread that calls `stop`: make it thread-safe.
        """
        worker = self.worker
        plugins, server, use_uvloop = self._plugins, (self.server_name, self.server_pid), self._use_uvloop
        channel = WorkerChannel(worker, send)
        return live(worker, channel, use_uvloop, lambda: live_as_child(worker, send, plugins, server, use_uvloop))

    def stop(self) -> None:
        """Ask the hosted worker to stop, from any thread of the hosting process: its `is_running` turns False
        and its `wait()`/`sleep()` return at once. What a backend does there when the server's `Backend.stop`
        carries a stop request. Idempotent."""
        self.worker.stop()


def hosted_life(worker: AbstractWorker, server_name: str, plugins: ChildPlugins) -> HostedLife:
    """`worker`'s life for a backend to host elsewhere, with the server's child plugins and its uvloop setting
    (called in the server's process)."""
    return HostedLife(worker, server_name, plugins, uvloop_enabled(), os.getpid())
