"""A worker a running server stopped on its own (a reload's, a scale-down's) that has not ended within the
server's shutdown timeout: ended as a shutdown would end it, or, when its backend cannot end it, abandoned."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._backend import KILL_GRACE
from ._log_extra import log_extra

if TYPE_CHECKING:
    from ._run import WorkerRun
    from ._server import Server

__all__ = ["end_overdue"]

logger = logging.getLogger("spoc")


def end_overdue(
    server: Server, run: WorkerRun, by: str, then: str, still_waited: Callable[[], WorkerRun | None]
) -> bool:
    """`run`'s worker did not stop within `Server.shutdown_timeout` of the request `by` made (``"the reload"``):
    say so, terminate it and kill it `KILL_GRACE` later if `still_waited()` still returns a run. False when its
    backend cannot end it (a thread): it is named as abandoned with its stack, and `then` says what follows."""
    worker = run.worker
    logger.error(
        "worker %r did not stop within %gs of %s's request (shutdown_timeout): ending it as a shutdown would",
        worker.name,
        server.shutdown_timeout,
        by,
        extra=log_extra(worker.name, server=server.name),
    )
    if server._end(run, "terminate"):
        assert server._monitor is not None

        def kill() -> None:
            late = still_waited()
            if late is not None:
                server._end(late, "kill")

        server._monitor.call_later(KILL_GRACE, kill)
        return True
    logger.warning(
        "worker %r (%s) is abandoned by %s: it keeps running (its backend cannot end it; threads cannot be "
        "killed), and %s when it ends; it is at:\n%s",
        worker.name,
        worker.backend,
        by,
        then,
        (worker.current_stack() or "  <no stack>").rstrip("\n"),
        extra=log_extra(worker.name, server=server.name),
    )
    return False
