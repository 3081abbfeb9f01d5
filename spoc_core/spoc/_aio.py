"""Event loops: the loop factory every async worker uses, uvloop, and run_async_safely.

spoc installs no event loop policy (deprecated from 3.12): it creates loops
through a factory, uvloop's once `set_uvloop_if_available` enabled it.
``SPOC_UVLOOP=1`` enables uvloop at import, ``0`` keeps the standard loop
whatever the program calls (``spoc run --uvloop`` / ``--no-uvloop``).

asyncio is imported where a loop is made or looked for, not at import: a
program of sync workers never loads it (with the ``ssl`` it pulls in, about
3 MB of each of its processes' memory, which a SIGKILLed child then takes
longer to free before its server hears of its death).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "UVLOOP_ENV",
    "apply_uvloop_environment",
    "uvloop_choice",
    "loop_factory",
    "run_async_safely",
    "run_in_new_loop",
    "set_uvloop_if_available",
    "uvloop_enabled",
]

logger = logging.getLogger("spoc")

UVLOOP_ENV = "SPOC_UVLOOP"

T = TypeVar("T")
LoopFactory = Callable[[], "asyncio.AbstractEventLoop"]

_uvloop_factory: LoopFactory | None = None


def set_uvloop_if_available() -> bool:
    """Make async workers (and `run_async_safely`) use uvloop when it is installed.

    Returns True when uvloop is now in use, False when it is not installed or
    ``SPOC_UVLOOP=0`` is set (the standard asyncio loop is used then). Workers
    started after the call run on uvloop, in threads and in child processes alike.
    """
    global _uvloop_factory
    if os.environ.get(UVLOOP_ENV, "").strip() == "0":
        logger.debug("uvloop not enabled: %s=0", UVLOOP_ENV)
        return False
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return False
    _uvloop_factory = uvloop.new_event_loop
    return True


def uvloop_choice(value: str) -> bool | None:
    """What a ``SPOC_UVLOOP`` value asks for: True (``1``), False (``0``), None (empty); else ValueError."""
    value = value.strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"{UVLOOP_ENV}={value!r}: use 1 (uvloop) or 0 (the standard asyncio loop)")
    return None if value == "" else value == "1"


def apply_uvloop_environment() -> bool:
    """Follow ``SPOC_UVLOOP`` (``1`` on, ``0`` off; else ValueError); return whether async workers now use uvloop."""
    global _uvloop_factory
    choice = uvloop_choice(os.environ.get(UVLOOP_ENV, ""))
    if choice is False:
        _uvloop_factory = None
    elif choice:
        set_uvloop_if_available()
    return uvloop_enabled()


def uvloop_enabled() -> bool:
    """Whether `set_uvloop_if_available` has switched loops to uvloop."""
    return _uvloop_factory is not None


def loop_factory(use_uvloop: bool | None = None) -> LoopFactory:
    """Return the factory for new event loops: uvloop's when enabled (or asked for)."""
    import asyncio

    if use_uvloop is None:
        use_uvloop = _uvloop_factory is not None
    if use_uvloop:
        if _uvloop_factory is None and not set_uvloop_if_available():
            return asyncio.new_event_loop
        assert _uvloop_factory is not None
        return _uvloop_factory
    return asyncio.new_event_loop


def run_in_new_loop(coro: Coroutine[Any, Any, T], factory: LoopFactory | None = None) -> T:
    """Run `coro` to completion in a new event loop made by `factory`, then close the loop: what
    ``asyncio.run(coro, loop_factory=...)`` does from 3.12 on, for every supported Python."""
    import asyncio

    loop = (factory or loop_factory())()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            _cancel_leftover_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    import asyncio

    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def run_async_safely(coro: Coroutine[Any, Any, T]) -> T | asyncio.Task[T]:
    """Run `coro` whether or not an event loop is already running in this thread.

    Inside a running loop it schedules the coroutine and returns the `asyncio.Task`
    (await it, or keep a reference so it is not garbage-collected). Otherwise it
    runs the coroutine to completion in a new loop (uvloop when enabled) and
    returns its result.
    """
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return run_in_new_loop(coro)
    return loop.create_task(coro)


def _follow_environment_at_import() -> None:
    try:
        if not apply_uvloop_environment() and uvloop_choice(os.environ.get(UVLOOP_ENV, "")):
            logger.warning("%s=1, but uvloop is not installed (pip install 'spoc-core[uvloop]')", UVLOOP_ENV)
    except ValueError as exc:
        logger.warning("%s; it is ignored", exc)


_follow_environment_at_import()
