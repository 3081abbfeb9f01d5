"""The closing line of a `Server.run_forever`: why the server stopped and, when it is not ok, what went wrong.

Logged by the server once its workers have ended and before its
``server_stopped`` hooks, so that a plugin that writes the server's log
(spoc-plugin-logging) still writes it, in its format.
"""

from __future__ import annotations

import logging

from ._events import ServerExit
from ._log_extra import count, log_extra

__all__ = ["log_closing_line"]

logger = logging.getLogger("spoc")


def log_closing_line(result: ServerExit) -> None:
    """One line: why the server stopped and, when it is not ok, what went wrong (ERROR, else INFO)."""
    why = result.signal or result.reason
    restarted = "".join(f"; worker {name!r} was restarted {count(n, 'time')}" for name, n in result.restarts.items())
    extra = log_extra(server=result.server)
    if result.ok:
        logger.info(
            "server %r stopped (%s): %s ended cleanly%s",
            result.server,
            why,
            count(len(result.exits), "worker"),
            restarted,
            extra=extra,
        )
        return
    problems = [f"worker {e.worker!r} {e.outcome}" + (f": {e.error}" if e.error else "") for e in result.failed]
    if result.forced:
        problems.append("shutdown had to force")
    if result.failure:
        problems.append(result.failure)
    logger.error(
        "server %r stopped (%s): %s%s; exit code %d",
        result.server,
        why,
        "; ".join(problems),
        restarted,
        result.exit_code,
        extra=extra,
    )
