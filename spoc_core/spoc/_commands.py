"""The subcommands of the ``spoc`` command that installed distributions add (see `spoc.commands`).

Each is checked as the command starts: one whose entry point cannot be
loaded, or names something other than a `Command`, is still listed, and
running it says why it cannot run, naming its distribution; one whose name
is spoc's own or another distribution's is not added, and a line on stderr
says so. A command that raises is reported with its distribution's name.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import signal
import sys
import traceback
from typing import Any

from .commands import ENTRY_POINT_GROUP, Command

__all__ = ["add_installed_commands"]


def add_installed_commands(commands: Any, only: str | None = None) -> bool:
    """Add the installed distributions' subcommands to `commands` (the ``spoc`` parser's subparsers), or only
    the one named `only`; whether any was added."""
    taken = {name: "spoc" for name in commands.choices}
    added = False
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if only is not None and entry.name != only:
            continue
        whose = _distribution(entry)
        added = True
        if entry.name in taken:
            print(
                f"spoc: {whose} adds a command {entry.name!r}, which is not added: "
                f"{taken[entry.name]} has a command of that name",
                file=sys.stderr,
            )
            continue
        taken[entry.name] = whose
        try:
            command = entry.load()
            if not isinstance(command, Command):
                raise TypeError(f"it is a {type(command).__name__}, not a spoc.commands.Command")
            arguments = argparse.ArgumentParser(add_help=False)
            command.add_arguments(arguments)
        except Exception as exc:
            _add_broken(commands, entry, whose, f"{type(exc).__name__}: {exc}")
            continue
        parser = commands.add_parser(
            entry.name, parents=[arguments], help=command.help, description=command.description or command.help
        )
        parser.set_defaults(handler=functools.partial(_run, command, entry.name, whose))
    return added


def _distribution(entry: importlib.metadata.EntryPoint) -> str:
    dist = entry.dist
    return "an unknown distribution" if dist is None else f"{dist.name} {dist.version}"


def _add_broken(commands: Any, entry: importlib.metadata.EntryPoint, whose: str, why: str) -> None:
    """List a command that cannot run; running it says why."""
    message = f"spoc {entry.name}: {whose}'s command ({entry.value}) cannot be loaded: {why}"
    parser = commands.add_parser(entry.name, help=f"(cannot be loaded, see spoc {entry.name})", add_help=False)
    parser.add_argument("ignored", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=functools.partial(_say_broken, message))


def _say_broken(message: str, args: argparse.Namespace) -> int:
    print(message, file=sys.stderr)
    return 1


def _run(command: Command, name: str, whose: str, args: argparse.Namespace) -> int:
    noted: list[int] = getattr(args, "noted_signals", [])
    if noted:  # noted by the spoc command's entry point while it was loading
        print(f"spoc {name}: {signal.Signals(noted[0]).name} arrived before the command began", file=sys.stderr)
        return 128 + noted[0]
    # The entry point only notes SIGINT and SIGTERM and ignores SIGHUP and SIGUSR1 while spoc loads (see
    # _spoc_command): a command gets their usual meaning back, so that Ctrl+C interrupts it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(signum, signal.SIG_DFL)
    try:
        code = command.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception:
        print(f"spoc {name}: {whose}'s command failed:", file=sys.stderr)
        traceback.print_exc()
        return 1
    return 0 if code is None else int(code)
