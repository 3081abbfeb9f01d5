"""The ``spoc`` command (also ``python -m spoc``).

``spoc run TARGET`` runs a server (see `_run_command`). ``spoc plugins`` lists
the plugins a server started here would load: each one's name, distribution,
version and the hooks it implements, as ``datasette plugins`` and ``pytest
--trace-config`` do. Installed distributions add more (`spoc.commands`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._commands import add_installed_commands

if TYPE_CHECKING:
    from ._plugins import PluginInfo

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, noted_signals: list[int] | None = None) -> int:
    """Run the command with `argv` (default: the process's arguments); return the exit code.

    `noted_signals`: the SIGINT and SIGTERM the entry point noted before ``spoc run`` had its handlers (see
    `_spoc_command`); ``spoc run`` starts nothing when one is there.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = _installed_command_parser(arguments[0]) if arguments and arguments[0] not in _OWN else None
    parser = parser or _parser()
    args = parser.parse_args(arguments)
    args.noted_signals = noted_signals if noted_signals is not None else []
    if args.command is None:
        parser.print_help()
        return 2
    code: int = args.handler(args)
    return code


_OWN = ("run", "plugins")
"""spoc's own subcommands; any other first argument may be an installed distribution's."""


def _installed_command_parser(name: str) -> argparse.ArgumentParser | None:
    """A parser with the installed command `name` alone, or None when no distribution adds it.

    Speed: building the whole parser imports what ``spoc run`` needs (the server, its backends, pluggy: a tenth
    of a second); ``spoc ctl status`` must answer within 100 ms, a Python start included.
    """
    if name.startswith("-"):
        return None
    parser = argparse.ArgumentParser(prog="spoc")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser if add_installed_commands(commands, only=name) else None


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    from ._plugins import ENTRY_POINT_GROUP
    from ._run_command import add_run_command

    parser = argparse.ArgumentParser(prog="spoc", description="Run and inspect spoc servers.")
    parser.add_argument("--version", action="version", version=f"spoc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_run_command(commands)
    plugins = commands.add_parser(
        "plugins",
        help="list the plugins a server would load, with their distribution, version and hooks",
        description=(
            f"List the plugins a Server started here would load: those installed under the entry point group "
            f"{ENTRY_POINT_GROUP!r}, unless SPOC_DISABLE_PLUGIN_AUTOLOAD is set, minus those SPOC_DISABLE_PLUGINS "
            f"blocks."
        ),
    )
    plugins.add_argument("--all", action="store_true", help="include spoc's built-in plugins")
    plugins.add_argument("--json", action="store_true", help="print JSON: a list of objects, one per plugin")
    plugins.set_defaults(handler=_plugins)
    add_installed_commands(commands)
    return parser


def _plugins(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from ._plugins import ENTRY_POINT_GROUP, PluginError
    from ._server import Server

    try:
        infos = Server("spoc plugins").plugins
    except PluginError as exc:
        print(f"spoc plugins: {exc}", file=sys.stderr)
        return 1
    shown = [info for info in infos if args.all or info.source != "builtin"]
    if args.json:
        print(json.dumps([asdict(info) for info in shown], indent=2))
    elif not shown:
        print(f"No spoc plugins installed (entry point group {ENTRY_POINT_GROUP!r}); --all shows the built-in ones.")
    else:
        print(_table(shown))
    return 0


def _table(infos: Sequence[PluginInfo]) -> str:
    header = ("NAME", "DISTRIBUTION", "VERSION", "HOOKS")
    rows = [(i.name, i.distribution or f"({i.source})", i.version or "-", ", ".join(i.hooks)) for i in infos]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(3)]
    lines = []
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3])
    return "\n".join(line.rstrip() for line in lines)
