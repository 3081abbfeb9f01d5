"""The tables ``spoc ctl ls`` and ``spoc ctl status`` print."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["duration", "server_table", "status_table"]

_COLOURS = {"running": "32", "starting": "36", "stopping": "33", "waiting to restart": "33", "given up": "31"}


def duration(seconds: float | None) -> str:
    """``"3d04h"``, ``"2h05m"``, ``"4m07s"``, ``"12.3s"``, or ``"-"``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _memory(size: int | None) -> str:
    return "-" if size is None else f"{size / 2**20:.1f}M"


def _table(header: Sequence[str], rows: list[list[str]], colour: dict[int, str] | None = None) -> str:
    widths = [max(len(row[i]) for row in [list(header), *rows]) for i in range(len(header))]
    lines = []
    for number, row in enumerate([list(header), *rows]):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        code = (colour or {}).get(number)
        if code is not None:  # the state column
            cells[2] = f"\x1b[{code}m{cells[2]}\x1b[0m"
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def status_table(workers: list[dict[str, Any]], now: float, terminal: bool) -> str:
    """One line per worker (its state coloured on a terminal)."""
    header = ("NAME", "BACKEND", "STATE", "PID", "UPTIME", "RESTARTS", "RSS", "CPU", "LAST EXIT")
    rows = [
        [
            w["name"],
            w["backend"],
            w["state"],
            "-" if w["pid"] is None else str(w["pid"]),
            duration(w["uptime"]),
            str(w["restarts"]),
            _memory(w["rss"]),
            "-" if w["cpu"] is None else f"{w['cpu']:.2f}s",
            w["last_exit"] or "-",
        ]
        for w in workers
    ]
    colour = {n + 1: _COLOURS[w["state"]] for n, w in enumerate(workers) if terminal and w["state"] in _COLOURS}
    return _table(header, rows, colour)


def server_table(servers: list[dict[str, Any]], now: float) -> str:
    """One line per server."""
    header = ("NAME", "PID", "UPTIME", "WORKERS", "SOCKET")
    rows = [
        [
            s.get("server", "?"),
            str(s.get("pid", "?")),
            duration(s.get("uptime")),
            str(s.get("workers", "?")) if "error" not in s else f"({s['error']})",
            str(s.get("socket", "")),
        ]
        for s in servers
    ]
    return _table(header, rows)
