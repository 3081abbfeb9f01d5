"""The logging ``spoc run`` sets up when the application has not: one readable line per event, on stderr.

An application that configures logging itself keeps its handlers and
format; ``--log-level`` then only sets the root logger's level.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["FORMAT", "LEVELS", "configure_logging", "parse_level"]

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_level(text: str) -> int:
    """A level name (any case) or number; ValueError naming the choices otherwise."""
    name = text.strip().upper()
    if name in LEVELS:
        return int(getattr(logging, name))
    if name.isdigit():
        return int(name)
    raise ValueError(f"{text!r} is not a log level: use one of {', '.join(LEVELS)} (or a number)")


def configure_logging(level: int | None) -> None:
    """Log to stderr at `level` (default INFO) unless the application has configured logging already.

    When it has (the root logger has handlers), only an explicit `level` is applied, to the root logger.
    """
    root = logging.getLogger()
    if root.handlers:
        if level is not None:
            root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.INFO if level is None else level)
