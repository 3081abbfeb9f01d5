"""The ``spoc`` command's entry point: the signals an operator sends are handled from its first line.

Importing the ``spoc`` package takes a tenth of a second (pluggy, asyncio,
multiprocessing). A Ctrl+C in that time would print a KeyboardInterrupt
traceback from the middle of an import, and a SIGTERM would kill the command
without a word (or be ignored, as PID 1 of a container ignores a signal it
has no handler for). So this module, outside the package and importing
nothing of spoc's, installs a handler that only notes such a signal, and
hands the noted signals to the command: ``spoc run`` then starts nothing,
says which signal arrived and exits with 128 + its number. SIGHUP and
SIGUSR1 (reload, stack dump) are ignored from the same first line: there is
nothing to reload or dump before the server runs, and their default action
would end the command without a word.

``python -m spoc`` imports the package before any of its code runs: a service
is best started with the ``spoc`` command.
"""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ["main"]


def main() -> int:
    """Load spoc with SIGINT and SIGTERM noted, SIGHUP and SIGUSR1 ignored, then run the command; return its exit
    code."""
    noted: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        noted.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, note)
    for signum in (signal.SIGHUP, signal.SIGUSR1):  # the server's own handlers take them over once it runs
        signal.signal(signum, signal.SIG_IGN)
    from spoc._cli import main as command

    return command(noted_signals=noted)
