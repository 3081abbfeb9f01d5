"""CPU time and resident memory of a process, read from /proc at scrape time (Linux)."""

from __future__ import annotations

import os

__all__ = ["process_usage"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def process_usage(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, user and system; resident bytes) of `pid`, or None when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text[text.rfind(b")") + 2 :].split()  # the command name may hold spaces and parentheses
    try:
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS
        return cpu, int(fields[21]) * _PAGE
    except (IndexError, ValueError):
        return None
