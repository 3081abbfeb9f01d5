"""One poll loop's table: the file descriptors it waits on and what each one calls when readable.

The monitor, the fork server and a child's control thread each block in one
``poll()`` on a wake-up pipe and the fds they serve; this is the part they share.
"""

from __future__ import annotations

import math
import select
from collections.abc import Callable

__all__ = ["Poller", "readable"]

_LONGEST_MS = 2**31 - 1  # what poll() takes; longer is as good as no limit


def _milliseconds(timeout: float | None) -> int | None:
    """`timeout` seconds as poll() takes them (None: no limit)."""
    return None if timeout is None or timeout * 1000 >= _LONGEST_MS else max(0, math.ceil(timeout * 1000))


def readable(fd: int, timeout: float | None) -> bool:
    """Wait up to `timeout` seconds (None: no limit) for `fd` to be readable, or at EOF; any fd number, unlike
    select(). One poll() call: `multiprocessing.connection.wait` would build a selector for the one fd."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(_milliseconds(timeout)))


class Poller:
    """File descriptors and their callbacks; `poll` waits and calls those of the readable ones."""

    def __init__(self) -> None:
        self._poll = select.poll()
        self._callbacks: dict[int, Callable[[], None]] = {}

    def watch(self, fd: int, on_readable: Callable[[], None]) -> None:
        """Call `on_readable()` from `poll` each time `fd` is readable (or at EOF), until `unwatch(fd)`."""
        self._callbacks[fd] = on_readable
        self._poll.register(fd, select.POLLIN)

    def unwatch(self, fd: int) -> None:
        if self._callbacks.pop(fd, None) is not None:
            self._poll.unregister(fd)

    def poll(self, timeout: float | None = None) -> None:
        """Wait up to `timeout` seconds (None: no limit) for a watched fd, then call the callback of each readable one.

        An fd that an earlier callback of the same batch unwatched is skipped.
        """
        for fd, _ in self._poll.poll(_milliseconds(timeout)):
            on_readable = self._callbacks.get(fd)
            if on_readable is not None:
                on_readable()
