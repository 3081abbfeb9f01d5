"""The thread backend: ThreadWorker runs its life in a thread of the server's process."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from ._backend import Backend, Runner, WorkerChannel
from ._errors import WorkerStartError
from ._worker import AbstractWorker, check_own_backend

__all__ = ["ThreadBackend", "ThreadWorker"]


class ThreadWorker(AbstractWorker):
    """A worker that lives in a thread of the current process: for I/O-bound work.

    Args:
        name: the worker's name, unique within its server; also the thread's name.
        daemon: when True (the default) the program may exit while the thread
            still runs; when False, interpreter exit waits for it.
        plugin_options: settings for plugins (`AbstractWorker.plugin_options`), such as the
            restart plugin's ``restart_policy``.
        replicas: how many copies of it a server runs (`AbstractWorker.replicas`; default: the class
            attribute, 1).
    """

    backend: str = "thread"
    """The backend that runs it: ``"thread"``, or another a plugin registers (set it on a subclass, or
    give ``plugin_options={"backend": ...}``)."""
    _lives_on_a_thread = True

    def __init__(
        self,
        name: str,
        daemon: bool = True,
        *,
        plugin_options: Mapping[str, Any] | None = None,
        replicas: int | None = None,
    ) -> None:
        super().__init__(name, daemon=daemon, plugin_options=plugin_options, replicas=replicas)

    def start(self) -> None:
        """Start the worker's thread on its own, outside a Server."""
        check_own_backend(self, "thread")
        self._check_startable()
        ThreadBackend().launch(self, WorkerChannel(self, self._run.receive))

    def is_alive(self) -> bool:
        thread = self._run.runner
        return thread is not None and thread.is_alive()

    @property
    def exitcode(self) -> int | None:
        """None until the worker's body has ended; then 0, or 1 after a failure."""
        return self._body_exitcode

    def join(self, timeout: float | None = None) -> None:
        """Wait up to `timeout` seconds for the thread to end (and its exit to be recorded)."""
        thread = self._run.runner
        if thread is None:
            raise WorkerStartError(f"worker {self.name!r} cannot be joined before it is started")
        deadline = None if timeout is None else time.monotonic() + timeout
        thread.join(timeout)
        if not thread.is_alive():
            self._run.finished.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))


class ThreadBackend(Backend):
    """Runs each `ThreadWorker` in a thread of its own, named after the worker."""

    name = "thread"
    worker_type = ThreadWorker

    def launch(self, worker: AbstractWorker, channel: WorkerChannel) -> Runner:
        assert isinstance(worker, ThreadWorker)
        thread = threading.Thread(target=channel.run_life, name=worker.name, daemon=worker.daemon)
        worker._run.runner = thread  # before it runs: the body may ask whether it is alive
        thread.start()
        return thread
