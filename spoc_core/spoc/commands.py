"""Subcommands of the ``spoc`` command that plugins add.

A distribution adds ``spoc NAME`` with an entry point in the group
``spoc.commands`` that names a `Command`::

    [project.entry-points."spoc.commands"]
    hello = "spoc_hello:command"

The entry point's name is the subcommand's. ``spoc --help`` lists it with its
`Command.help`; ``spoc NAME ...`` parses its arguments and calls `Command.run`,
whose return value is the exit code. The module the entry point names is
imported each time the ``spoc`` command starts, whatever subcommand runs:
keep it light, and import what the command needs inside `Command.run`.
``spoc NAME`` imports that module alone, and this module loads nothing of
spoc's server, so a light command starts as fast as Python does.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ENTRY_POINT_GROUP", "Command"]

ENTRY_POINT_GROUP = "spoc.commands"
"""The entry point group of the ``spoc`` command's subcommands."""


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A command that takes no argument adds none."""


@dataclass(frozen=True)
class Command:
    """A subcommand of the ``spoc`` command, added by the distribution whose entry point names it.

    Attributes:
        help: one line for ``spoc --help``.
        run: does the work, given the parsed arguments; returns the exit code (None is 0).
        add_arguments: adds the subcommand's arguments to its ``argparse`` parser.
        description: the text atop ``spoc NAME --help`` (default: `help`).
    """

    help: str
    run: Callable[[argparse.Namespace], int | None]
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    description: str | None = None
