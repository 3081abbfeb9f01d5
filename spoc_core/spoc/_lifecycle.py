"""A worker's life where it lives: the lifecycle body that runs it and sends its events, and which worker runs here.

`LifecycleBody` runs ``setup() -> lifecycle("startup") -> main() -> teardown() ->
lifecycle("shutdown")`` on the calling thread, sync or async, and turns every
failure into an ``"error"`` event; `live` wraps it with the worker's end
(`WorkerChannel.exited`). `current_worker` tells plugins and libraries which
worker's body runs on the calling thread (or in this child process).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ._aio import loop_factory, run_in_new_loop
from ._errors import ErrorRecord, Phase
from ._events import WorkerEvent, make_event
from ._log_extra import log_extra

if TYPE_CHECKING:
    import asyncio

    from ._backend import WorkerChannel
    from ._worker import AbstractWorker

__all__ = ["LifecycleBody", "Send", "current_worker", "live", "set_process_worker"]

logger = logging.getLogger("spoc")

Send = Callable[[WorkerEvent], None]

_body = threading.local()
_process_worker: AbstractWorker | None = None


def current_worker() -> AbstractWorker | None:
    """The worker whose body runs where this is called, or None.

    On the thread that runs a worker's body (its setup, main, teardown and
    lifecycle, sync or async), that worker. In a process worker's child, that
    worker from any thread of the child, and from ``child_starting`` and
    ``child_stopping`` too. Elsewhere (the server's own threads, threads a
    thread worker starts itself) None.

    For plugins and libraries that attribute what happens to the worker it
    happens in (metrics, log records) without the worker being passed around.
    """
    worker = getattr(_body, "worker", None)
    return worker if worker is not None else _process_worker


def set_process_worker(worker: AbstractWorker) -> None:
    """In a process worker's child: `worker` is the worker of every thread of this process."""
    global _process_worker
    _process_worker = worker


def live(
    worker: AbstractWorker, channel: WorkerChannel, use_uvloop: bool, body: Callable[[], int] | None = None
) -> int:
    """`worker`'s whole life on the calling thread, each event to `channel`, its end (`WorkerChannel.exited`)
    included (`AbstractWorker._lives_on_a_thread`); `body` runs the lifecycle instead of a plain `LifecycleBody` (a
    hosted life's, with the child hooks). Returns its exit code (0 clean, 1 failed)."""
    exitcode = 1
    try:
        exitcode = body() if body is not None else LifecycleBody(worker, channel.send).run(use_uvloop)
    finally:
        worker._body_exitcode = exitcode
        worker._running = False
        channel.exited(exitcode)
    return exitcode


class LifecycleBody:
    """Runs one worker's life where it lives and emits its events.

    One implementation serves sync and async workers: the body is a coroutine
    that awaits only what the worker's own methods return, so for a sync worker
    it never suspends and is driven to the end without an event loop.
    """

    def __init__(self, worker: AbstractWorker, send: Send, last_words: Callable[[], None] | None = None) -> None:
        self.worker = worker
        self.send = send
        self.exitcode = 0
        self.last_words = last_words
        self.phase_began = time.monotonic()
        worker._send = send

    def run(self, use_uvloop: bool | None = None) -> int:
        """Run the whole lifecycle on the calling thread; return the exit code (0 clean, 1 failed).

        `last_words`, when given, runs after the lifecycle, while the worker
        can still send records (a child's ``child_stopping`` hooks).
        """
        worker = self.worker
        worker._body_thread = threading.get_ident()
        _body.worker = worker
        try:
            self._run(use_uvloop)
        finally:
            _body.worker = None
            worker._phase = None
            worker._loop = None
            worker._body_thread = None  # thread idents are reused
            try:
                if self.last_words is not None:
                    self.last_words()
            finally:
                worker._send = None  # no record may follow the worker's last event
        return self.exitcode

    def _run(self, use_uvloop: bool | None) -> None:
        if self.worker.is_async:
            try:
                factory = loop_factory(use_uvloop)
                run_in_new_loop(self._life(), factory)
            except BaseException as exc:  # the loop itself could not run
                self._failed(exc, "setup")
        else:
            try:
                _drive_without_loop(self._life())
            except RuntimeError as exc:
                self._failed(exc, "main")

    async def _life(self) -> None:
        worker = self.worker
        if worker.is_async:
            import asyncio  # here: a sync worker's process never loads it (see `spoc._aio`)

            worker._loop = loop = asyncio.get_running_loop()
            loop.set_exception_handler(self._loop_exception)
            wake = worker._signal_wake
            if wake is not None and wake.thread == threading.get_ident():
                loop.add_reader(wake.read_fd, wake.drain)  # every signal wakes the loop: its handlers run at once
        if await self._phase("setup", worker.setup) and await self._notify("startup", "setup"):
            await self._phase("main", worker.main)
        await self._phase("teardown", worker.teardown)
        await self._notify("shutdown", "teardown")

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """What asyncio reports in the worker's loop (a task's exception nobody retrieved, a failing
        callback), through the ``spoc`` logger and naming the worker, with its traceback."""
        exception = context.get("exception")
        source = context.get("task") or context.get("future") or context.get("handle")
        logger.error(
            "worker %r: %s%s",
            self.worker.name,
            context.get("message") or "the event loop caught an exception",
            f" ({source!r})" if source is not None else "",
            exc_info=exception if isinstance(exception, BaseException) else None,
            extra=log_extra(self.worker.name),
        )

    async def _phase(self, phase: Phase, method: Callable[[], Any]) -> bool:
        self.worker._phase = phase
        self.phase_began = time.monotonic()
        try:
            result = method()  # called here, not in a coroutine of its own, which would turn StopIteration into
            if result is not None and inspect.isawaitable(result):  # RuntimeError (PEP 479)
                await result
        except SystemExit as exc:
            if exc.code not in (None, 0):
                await self._failed_async(exc, phase)
                return False
        except BaseException as exc:
            await self._failed_async(exc, phase)
            return False
        return True

    async def _notify(self, kind: str, phase: Phase) -> bool:
        """Call the user's lifecycle(kind), then tell the server; a raise counts against `phase`."""
        duration = time.monotonic() - self.phase_began
        try:
            await _call(self.worker.lifecycle, kind)
        except BaseException as exc:
            await self._failed_async(exc, phase)
            if kind == "startup":
                return False
        self.send(make_event(self.worker.name, kind, phase=phase, duration=duration))
        return True

    async def _failed_async(self, exc: BaseException, phase: Phase) -> None:
        record = self._failed(exc, phase)
        try:
            await _call(self.worker.lifecycle, "error", exception=exc, phase=phase)
        except BaseException as handler_exc:
            self._failed(handler_exc, phase, note=f"lifecycle('error') raised while handling {record}")

    def _failed(self, exc: BaseException, phase: Phase, note: str = "") -> ErrorRecord:
        self.exitcode = 1
        _drop_own_frames(exc)
        record = ErrorRecord.from_exception(exc, phase)
        if note:
            record = ErrorRecord(record.type_name, record.message, f"{note}\n{record.traceback}", phase, exc)
        duration = time.monotonic() - self.phase_began
        self.send(make_event(self.worker.name, "error", phase=phase, error=record, duration=duration))
        return record


def _drop_own_frames(exc: BaseException) -> None:
    """Start the traceback at the user's code, not at this module's plumbing."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_globals.get("__name__") == __name__:
        tb = tb.tb_next
    exc.__traceback__ = tb


async def _call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    result = method(*args, **kwargs)
    if result is not None and inspect.isawaitable(result):
        await result


def _drive_without_loop(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never suspends (a sync worker's body) to its end."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("a synchronous worker's body awaited something; make its methods async def")
