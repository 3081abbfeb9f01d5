"""The text of a stack dump: the Python stacks of a worker's threads and its event loop's tasks.

Used where the worker lives; the text is built whole before it is written,
so two dumps never interleave.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

__all__ = ["format_stacks", "task_stacks", "thread_stack"]


def thread_stack(ident: int) -> str | None:
    """The formatted Python stack of thread `ident`, or None when it runs none (or no longer exists).

    A walk of a running thread's frames may meet a frame half made (CPython
    3.11): it is then taken again, from that thread's frame as it is by then.
    """
    for _ in range(5):
        frame = sys._current_frames().get(ident)
        if frame is None:
            return None
        try:
            return "".join(traceback.format_stack(frame))
        except (AttributeError, ValueError):
            continue
    return "  <the stack changed under each of five reads>\n"


def format_stacks(threads: Iterable[int] | None = None, loop: asyncio.AbstractEventLoop | None = None) -> str:
    """The stacks of `threads` (idents; None: every thread but the calling one) and of `loop`'s tasks."""
    frames = sys._current_frames()
    names = {t.ident: t.name for t in threading.enumerate()}
    me = threading.get_ident()
    idents = [i for i in frames if i != me] if threads is None else [i for i in threads if i in frames]
    parts = []
    for ident in idents:
        stack = thread_stack(ident) or "  <no Python stack>\n"
        parts.append(f"Thread {names.get(ident, '?')!r} ({ident}):\n{stack}")
    if loop is not None and not loop.is_closed():
        parts.extend(task_stacks(loop))
    return "".join(parts) or "  <no Python stack>\n"


def task_stacks(loop: asyncio.AbstractEventLoop) -> list[str]:
    """The await chain of each task of `loop`, headed by the task's name."""
    import asyncio  # loaded already: `loop` is one of its loops (here, not at import: see `spoc._aio`)

    try:
        tasks = asyncio.all_tasks(loop)
    except RuntimeError:  # the loop changed its tasks while we read them, more than all_tasks retries
        return []
    return [f"Task {task.get_name()!r}:\n{_await_chain(task.get_coro())}" for task in sorted(tasks, key=_name)]


def _name(task: asyncio.Task[object]) -> str:
    return task.get_name()


def _await_chain(awaitable: object) -> str:
    """Where a suspended coroutine is, down the chain of what it awaits (a task's own stack shows only its top)."""
    frames = []
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is not None:
            frames.append((frame, frame.f_lineno))
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return "".join(traceback.StackSummary.extract(frames).format()) or "  <not running>\n"
