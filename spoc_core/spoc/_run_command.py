"""``spoc run TARGET``: import a server (or workers) and run it until a signal, then exit with its outcome.

Exit codes: 0 after a clean shutdown; 1 when a worker failed, shutdown had
to force, or the application's code raised while loading; 2 for an error in
the configuration, found before any worker ran (a bad option, environment
value or target, a plugin that cannot load, a setting a plugin refuses), which
a restart would only repeat; 128 + the signal's number when a signal arrives
before the server runs. Each option has an environment variable (the option
wins); the plugin and uvloop options set the ones the core reads itself, so
they reach every Server the application builds.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

from ._aio import UVLOOP_ENV, apply_uvloop_environment, uvloop_choice
from ._deadlines import check_timeout
from ._errors import SpocError, WorkerStartError
from ._log_extra import log_extra
from ._log_setup import LEVELS, configure_logging, parse_level
from ._plugins import AUTOLOAD_ENV, ENTRY_POINT_GROUP, PLUGINS_ENV, installed_names, names_in, refused_by
from ._server import DEFAULT_SHUTDOWN_TIMEOUT, Server
from ._signals import RELOAD_SIGNAL, SERVER_SIGNALS, SHUTDOWN_SIGNALS, STACK_DUMP_SIGNAL, signal_name
from ._target import EXPECTED, TargetError, load_server

__all__ = ["LOG_FORMAT_ENV", "LOG_LEVEL_ENV", "SCALE_ENV", "SHUTDOWN_TIMEOUT_ENV", "add_run_command", "run"]

logger = logging.getLogger("spoc")

SHUTDOWN_TIMEOUT_ENV = "SPOC_SHUTDOWN_TIMEOUT"
SCALE_ENV = "SPOC_SCALE"
LOG_LEVEL_ENV = "SPOC_LOG_LEVEL"
LOG_FORMAT_ENV = "SPOC_LOG_FORMAT"
LOG_FORMATS = ("json", "console", "logfmt")
LOGGING_PLUGIN = "logging"
"""The plugin that writes the log formats: spoc-plugin-logging, under its entry point's name."""

USAGE_ERROR = 2
"""The exit code of an error in the configuration: a service manager should not restart on it
(``RestartPreventExitStatus=2``)."""


class UsageError(SpocError):
    """A bad option or environment value; ``spoc run`` exits with 2."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while the application was loading, before the server ran."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def add_run_command(commands: Any) -> None:
    """Add ``run`` to the ``spoc`` command's subcommands."""
    run_parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="run a server (or workers) until SIGINT/SIGTERM, then shut it down gracefully",
        description=(
            "Import TARGET and run it until SIGINT or SIGTERM (or until every worker has ended), then shut it "
            "down gracefully and exit 0 when everything ended cleanly, 1 when a worker failed or shutdown had to "
            "force, 2 for an error in the configuration (an option, environment value, target or setting), found "
            "before any worker ran."
        ),
        epilog=(
            f"TARGET is module:attribute or path/to/file.py:attribute, where the attribute is {EXPECTED} "
            f"(a worker class counts: it is called without arguments). Every option can also be set by an "
            f"environment variable, named in its help; the option wins. Logging goes to stderr through the "
            f"standard logging module unless the application configures logging itself."
        ),
    )
    run_parser.add_argument("target", metavar="TARGET", help="module:attribute or path/to/file.py:attribute")
    run_parser.add_argument(
        "--shutdown-timeout",
        metavar="SECONDS",
        help=(
            f"seconds the workers get to stop after the first signal, before process workers are killed "
            f"(env {SHUTDOWN_TIMEOUT_ENV}; default {DEFAULT_SHUTDOWN_TIMEOUT:g})"
        ),
    )
    run_parser.add_argument(
        "--scale",
        metavar="NAME=N",
        action="append",
        default=[],
        help=(
            f"run N replicas of the worker added as NAME (N >= 0), over the count its code gives; repeatable "
            f"(env {SCALE_ENV}=NAME=N,NAME2=M; the option wins for a name both give)"
        ),
    )
    run_parser.add_argument(
        "--log-level",
        metavar="LEVEL",
        help=f"{', '.join(LEVELS)} (env {LOG_LEVEL_ENV}; default INFO)",
    )
    run_parser.add_argument(
        "--log-format",
        metavar="FORMAT",
        help=(
            f"{', '.join(LOG_FORMATS)}: one structured stream on stdout of every worker's output and events and "
            f"spoc's own records, written by spoc-plugin-logging, which must be installed (env {LOG_FORMAT_ENV}; "
            f"default: none, spoc's own lines go to stderr as plain text and the workers' output is left as it is)"
        ),
    )
    run_parser.add_argument(
        "--no-plugins",
        action="store_true",
        default=None,
        help=(
            f"do not load the installed plugins (entry point group {ENTRY_POINT_GROUP!r}); with --plugin, load "
            f"only those (env {AUTOLOAD_ENV}=1)"
        ),
    )
    run_parser.add_argument(
        "--plugin",
        metavar="NAME",
        action="append",
        default=[],
        help=(
            f"load this plugin too: an installed plugin's name, or a module (pkg.module or pkg.module:attribute); "
            f"repeatable (env {PLUGINS_ENV}, comma-separated)"
        ),
    )
    run_parser.add_argument(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=(
            f"run async workers on uvloop (an error when it is not installed), or never (--no-uvloop, even when "
            f"the application asks for it) (env {UVLOOP_ENV}=1 or 0; default: as the application decides)"
        ),
    )
    run_parser.set_defaults(handler=run)


@dataclass(frozen=True)
class RunSettings:
    """``spoc run``'s options, resolved against their environment variables."""

    target: str
    shutdown_timeout: float
    log_level: int | None
    log_format: tuple[str, str] | None
    """The format asked for, and where (the option or the environment variable)."""
    no_plugins: bool
    """--no-plugins was given (``SPOC_DISABLE_PLUGIN_AUTOLOAD`` in the environment is read by the core itself)."""
    plugins: tuple[str, ...]
    uvloop: bool | None
    scale: dict[str, tuple[int, str]]
    """The replica counts to start with, by worker name, each with where it was given."""

    @classmethod
    def resolve(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> RunSettings:
        """The settings from `args`, falling back to `environ`; UsageError naming the option or variable at fault."""
        timeout_text, timeout_source = _given(
            args.shutdown_timeout, "--shutdown-timeout", SHUTDOWN_TIMEOUT_ENV, environ
        )
        level_text, level_source = _given(args.log_level, "--log-level", LOG_LEVEL_ENV, environ)
        format_text, format_source = _given(args.log_format, "--log-format", LOG_FORMAT_ENV, environ)
        if format_text is not None and format_text not in LOG_FORMATS:
            raise UsageError(f"{format_source} {format_text!r}: use one of {', '.join(LOG_FORMATS)}")
        if any(not name.strip() for name in args.plugin):
            raise UsageError("--plugin needs a plugin name or a module")
        plugins = names_in(environ.get(PLUGINS_ENV, "")) + [name.strip() for name in args.plugin]
        uvloop = args.uvloop
        if uvloop is None:
            try:
                uvloop = uvloop_choice(environ.get(UVLOOP_ENV, ""))
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        return cls(
            target=args.target,
            shutdown_timeout=_timeout(timeout_text, timeout_source),
            log_level=_level(level_text, level_source),
            log_format=None if format_text is None else (format_text, format_source),
            no_plugins=bool(args.no_plugins),
            plugins=tuple(dict.fromkeys(plugins)),
            uvloop=uvloop,
            scale=_scales(args.scale, environ.get(SCALE_ENV, "")),
        )


def _given(value: str | None, option: str, variable: str, environ: Mapping[str, str]) -> tuple[str | None, str]:
    if value is not None:
        return value, option
    if environ.get(variable, "").strip():
        return environ[variable].strip(), variable
    return None, option


def _timeout(text: str | None, source: str) -> float:
    if text is None:
        return DEFAULT_SHUTDOWN_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        raise UsageError(f"{source} {text!r}: give the number of seconds, e.g. 10 or 2.5") from None
    try:
        return check_timeout(seconds, "spoc run", source)  # the rule run_forever() applies
    except ValueError:
        raise UsageError(
            f"{source} {text!r}: the shutdown timeout must be a positive number of seconds (inf: no limit)"
        ) from None


def _scales(options: list[str], variable: str) -> dict[str, tuple[int, str]]:
    """The counts of ``--scale NAME=N`` options over those of ``SPOC_SCALE``, by name; UsageError naming the bad
    one."""
    counts: dict[str, tuple[int, str]] = {}
    given = [(item, SCALE_ENV) for item in variable.split(",") if item.strip()]
    given += [(item, "--scale") for item in options]
    for item, source in given:
        name, equals, number = (part.strip() for part in item.partition("="))
        if not name or not equals:
            raise UsageError(
                f"{source} {item!r}: give NAME=N, the name a worker was added with and a count, e.g. resize=4"
            )
        if not number.isdigit() or not number.isascii():
            raise UsageError(
                f"{source} {item!r}: the count {number!r} must be a whole number of replicas >= 0, e.g. {name}=4"
            )
        counts[name] = (int(number), source)
    return counts


def _apply_scales(server: Server, scales: Mapping[str, tuple[int, str]]) -> None:
    """Set the replica counts `server` starts with; UsageError naming a worker it does not have."""
    for name, (replicas, source) in scales.items():
        try:
            server.scale(name, replicas)
        except ValueError as exc:
            known = ", ".join(server.replica_counts()) or "none"
            if name not in server.replica_counts():
                raise UsageError(
                    f"{source} {name}={replicas}: server {server.name!r} has no worker named {name!r} (its workers: "
                    f"{known})"
                ) from None
            raise UsageError(f"{source} {name}={replicas}: {exc}") from None


def _level(text: str | None, source: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_level(text)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    """Run ``spoc run``; return the exit code."""
    previous = {signum: signal.signal(signum, _interrupt) for signum in SHUTDOWN_SIGNALS}
    # Nothing to reload or dump before the server runs; a PID 1 would ignore them anyway, anyone else would die.
    previous.update({signum: signal.signal(signum, signal.SIG_IGN) for signum in (RELOAD_SIGNAL, STACK_DUMP_SIGNAL)})
    try:
        if args.noted_signals:  # noted by the spoc command's entry point while spoc itself was loading
            raise Interrupted(args.noted_signals[0])
        return _run(args)
    except Interrupted as interrupted:
        print(
            f"spoc run: {signal_name(interrupted.signum)} arrived while loading {args.target!r}; nothing was started",
            file=sys.stderr,
        )
        return 128 + interrupted.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Until run_forever() takes over: a PID 1 ignores a signal without a handler, so handle SIGTERM and SIGINT."""
    raise Interrupted(signum)


def _run(args: argparse.Namespace) -> int:
    try:
        settings = RunSettings.resolve(args, os.environ)
        _apply_to_environment(settings)
    except UsageError as exc:
        return _usage_error(str(exc))
    try:
        server = load_server(settings.target)
    except TargetError as exc:
        return _usage_error(str(exc))
    except Exception as exc:
        print(f"spoc run: loading {settings.target!r} raised:", file=sys.stderr)
        traceback.print_exception(type(exc), exc, _without_spoc_frames(exc.__traceback__), file=sys.stderr)
        return 1
    try:
        _apply_scales(server, settings.scale)
    except UsageError as exc:
        return _usage_error(str(exc))
    if settings.log_format is not None and not _logging_plugin_active(server):
        name, source = settings.log_format
        return _usage_error(
            f"{source} {name!r}: log formats are written by spoc-plugin-logging, which is not active for server "
            f"{server.name!r}: pip install spoc-plugin-logging (or unblock it), or drop {source}"
        )
    configure_logging(settings.log_level)
    try:
        result = server.run_forever(shutdown_timeout=settings.shutdown_timeout)
    except SpocError as exc:  # a plugin that cannot load, a backend nobody registered: the configuration
        logger.error("server %r could not start: %s", server.name, exc, extra=log_extra(server=server.name))
        return 1 if isinstance(exc, WorkerStartError) else USAGE_ERROR  # a fork that failed: not the configuration
    except Exception as exc:
        refuser = refused_by(exc)
        if refuser is None:  # a bug, not a setting: its traceback
            logger.exception("server %r could not start", server.name, extra=log_extra(server=server.name))
            return 1
        logger.error(
            "server %r could not start: %s (refused by %s)",
            server.name,
            exc,
            refuser,
            extra=log_extra(server=server.name),
        )
        return USAGE_ERROR
    finally:
        for signum in SERVER_SIGNALS:  # the server is done: a late signal changes nothing now
            signal.signal(signum, signal.SIG_IGN)
    return result.exit_code  # the server logged its closing line


def _logging_plugin_active(server: Server) -> bool:
    try:
        return any(plugin.name == LOGGING_PLUGIN for plugin in server.plugins)
    except SpocError:  # a plugin that fails to load: run_forever() reports it
        return True


def _without_spoc_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from the first frame of the application's code: spoc's own loading frames say nothing."""
    package = os.path.dirname(__file__) + os.sep
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename.startswith(package):
        tb = tb.tb_next
    return tb


def _usage_error(message: str) -> int:
    print(f"usage: spoc run [options] TARGET\nspoc run: error: {message}", file=sys.stderr)
    return USAGE_ERROR


def _apply_to_environment(settings: RunSettings) -> None:
    """Hand the plugin and uvloop choices to the core through the variables it reads itself."""
    if settings.log_format is not None:
        os.environ[LOG_FORMAT_ENV] = settings.log_format[0]
    if settings.log_level is not None:  # for the children that configure their logging afresh (spawn)
        os.environ[LOG_LEVEL_ENV] = logging.getLevelName(settings.log_level)
    if settings.no_plugins:
        os.environ[AUTOLOAD_ENV] = "1"
    if settings.plugins:
        installed = installed_names()
        for name in settings.plugins:
            _check_plugin_name(name, installed)
        os.environ[PLUGINS_ENV] = ",".join(settings.plugins)
    if settings.uvloop is not None:
        os.environ[UVLOOP_ENV] = "1" if settings.uvloop else "0"
        if apply_uvloop_environment() != settings.uvloop:  # only --uvloop can fail: uvloop is missing
            raise UsageError(
                f"uvloop was asked for (--uvloop or {UVLOOP_ENV}=1) but is not installed; "
                f"pip install 'spoc-core[uvloop]', or drop the request"
            )


def _check_plugin_name(name: str, installed: list[str]) -> None:
    """A plugin to load must be installed under that name, or be an importable module."""
    if name in installed:
        return
    module = name.partition(":")[0]
    try:
        found = bool(module) and importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise UsageError(
            f"--plugin {name!r}: no installed spoc plugin has that name (installed: {', '.join(installed) or 'none'})"
            f" and no module {module!r} can be imported"
        )
