"""The `Logging` plugin: its hooks, server side and child side."""

from __future__ import annotations

import codecs
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

import spoc
import spoc.settings

from . import _process_hooks
from ._capture import RAW_LEVELS, ChildOutput, split_line
from ._formats import FORMAT_ENV, Render, choose_format, json_lines, renderer
from ._in_child import flush_streams, mark_event, prepare_child
from ._records import log_record_fields
from ._writer import DEFAULT_BUFFER, Writer, file_of, writer_for

__all__ = ["Logging", "Unasked", "installed_plugin"]

logger = logging.getLogger("spoc.logging")
_lifecycle_logger = logging.getLogger("spoc")  # the logger of spoc's records that the lifecycle records stand for
_LEVEL_NUMBERS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

RECORD_TOPIC = "logging.record"
"""The topic of a thread worker's lines and log records, sent through its channel to keep them in order."""

FLUSH_AT_STOP = 2.0
"""Seconds the last lines get to reach a slow destination once a server has stopped, within its shutdown
deadline (its stop and `Server.shutdown_timeout`)."""

_ROUTE = spoc.StashKey["Logging"]()
"""In a worker's stash: the plugin of its server, which writes what the worker writes and logs."""
_active: list[Logging] = []  # the plugins of the servers running in this process, the latest last


def _route_worker(worker: spoc.AbstractWorker) -> Logging | None:
    """The plugin serving a thread worker's server, for the text the worker writes."""
    plugin = worker.stash.get(_ROUTE, None)
    return plugin if plugin is not None and isinstance(worker, spoc.ThreadWorker) else None


def _route_other(stream: TextIO) -> Logging | None:
    """The plugin writing its stream to the file `stream` writes to: text no worker wrote goes through its writer,
    in its place among the records (which then start lines of their own)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file
        return None
    for plugin in reversed(_active):
        if plugin._writer is not None and _same_file(fd, plugin.destination):
            return plugin
    return None


def _same_file(fd: int, other: int) -> bool:
    """Whether `fd` and `other` write to the same file (a terminal, a pipe: ``2>&1`` makes fd 2 fd 1's)."""
    if fd == other:
        return True
    mine = file_of(fd)
    return mine is not None and mine == file_of(other)


def _route_record(record: logging.LogRecord) -> Logging | None:
    """The plugin a log record of the server's process goes to: its worker's, else the latest server's."""
    worker = spoc.current_worker()
    plugin = worker.stash.get(_ROUTE, None) if worker is not None else None
    if plugin is None:
        plugin = _active[-1] if _active else None
    return plugin


class Logging:
    """One ordered, structured log stream for every worker of a server, thread or process.

    Args:
        format: ``"json"``, ``"console"`` or ``"logfmt"``; None: the
            environment variable ``SPOC_LOG_FORMAT``, else ``console`` when the
            destination is a terminal and ``json`` when it is not.
        destination: the fd the stream is written to (default 1, the server's
            stdout).
        tail_lines: how many of a process worker's last lines of output are
            attached to its error and exit records (default 50; 0: none).
        max_line: a captured line longer than this many bytes is written in
            parts of at most this many bytes, cut between characters, each
            (the last one too) marked ``"partial": true``.
        buffer: bytes of lines that may wait for a slow destination; past
            them, lines are dropped (and how many is written once the
            destination takes lines again), so that the server never waits
            for its output.

    Raises:
        ValueError: a `format`, `tail_lines`, `max_line` or `buffer` that cannot be used; the message names it.
    """

    name = "logging"

    def __init__(
        self,
        format: str | None = None,
        *,
        destination: int = 1,
        tail_lines: int = 50,
        max_line: int = 1 << 20,
        buffer: int = DEFAULT_BUFFER,
    ) -> None:
        if format is not None:
            choose_format(format, destination)  # raises, naming the value
        self.format = format
        self.destination = destination
        self.tail_lines = spoc.settings.whole("Logging", "tail_lines", tail_lines)
        self.max_line = spoc.settings.whole("Logging", "max_line", max_line, least=1024)
        self.buffer = spoc.settings.whole("Logging", "buffer", buffer, least=1024)
        self._render: Render | None = None
        self._format = ""
        self._writer: Writer | None = None
        self._children: dict[int, ChildOutput] = {}  # by id() of the worker
        self._partial: dict[tuple[int, str], str] = {}  # a thread worker's text not ended by a newline yet
        self._continued: set[tuple[int, str]] = set()  # a thread worker's lines written in parts so far
        self._decoders: dict[tuple[int, str], codecs.IncrementalDecoder] = {}  # of the bytes a thread worker wrote
        self._serving: set[str] = set()  # the servers it writes the stream of, by name
        self._stop_began: dict[str, float] = {}  # by server name: when its stop began (monotonic)
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """What travels to a child: the settings (the child writes to the pipes, not to the destination)."""
        return {k: getattr(self, k) for k in ("format", "destination", "tail_lines", "max_line", "buffer")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state.pop("format"), **state)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Logging(format={self.format!r}, destination={self.destination}, tail_lines={self.tail_lines})"

    # ------------------------------------------------------------------ writing

    def _emit(self, records: list[dict[str, Any]]) -> None:
        render, writer = self._render, self._writer
        if render is None or writer is None:
            return
        writer.write(b"".join(render(record) for record in records), len(records))

    def _emit_lines(self, output: ChildOutput, stream: str, lines: list[str], now: float) -> None:
        """Plain captured lines, rendered in one go (json, as `_emit` would render each)."""
        writer = self._writer
        if writer is None:
            return
        head = {"timestamp": now, "level": RAW_LEVELS[stream]}
        tail = {"worker": output.worker.name, "pid": output.pid, "server": output.server, "stream": stream}
        writer.write(json_lines(head, "event", tail, lines), len(lines))

    def log_record(self, record: logging.LogRecord) -> bool:
        """A record of the server's process (`_process_hooks.ServerLogHandler`); False when it cannot be
        written: the stream's destination failed (the handler then hands it to the handlers set aside).

        spoc's own record of a worker's start, failure or end is left out: the
        plugin writes its own, from the hooks. A thread worker's record goes
        through its channel, in order with its events.
        """
        writer = self._writer
        if writer is not None and writer.gone is not None:
            return False
        if hasattr(record, "spoc_event"):
            return True
        fields = log_record_fields(record)
        worker = spoc.current_worker()
        if worker is not None and isinstance(worker, spoc.ThreadWorker):
            self._from_thread_worker(worker, fields)
            return True
        named = getattr(record, "spoc_worker", None)
        if isinstance(named, str):
            fields["worker"] = named
            for output in list(self._children.values()):
                if output.worker.name == named:
                    output.drain()
        server = getattr(record, "spoc_server", None)
        if isinstance(server, str):
            fields["server"] = server
        fields.setdefault("pid", os.getpid())
        self._emit([_ordered(fields)])
        return True

    def other_text(self, original: TextIO, data: str | bytes) -> bool:
        """Text (or bytes) no worker wrote, to a stream that writes where this plugin's stream goes: through the
        writer, in its place among the records; False when the plugin no longer writes (the caller writes it)."""
        writer = self._writer
        if writer is None:
            return False
        original.flush()  # what it buffered before comes first
        if isinstance(data, str):
            encoding = getattr(original, "encoding", None) or "utf-8"
            data = data.encode(encoding, getattr(original, "errors", None) or "strict")
        writer.write_text(data)
        return True

    def thread_text(self, worker: spoc.AbstractWorker, stream: str, text: str | bytes) -> None:
        """Text a thread worker wrote to ``sys.stdout`` or ``sys.stderr`` (or bytes, to their ``buffer``): its
        whole lines are written, a line longer than `max_line` bytes in parts (as a process worker's)."""
        key = (id(worker), stream)
        lines: list[tuple[str, bool]] = []  # (line, whether it is a part of a longer one)
        with self._lock:
            if isinstance(text, bytes):  # decoded as a child's: a character cut between two writes stays whole
                decoder = self._decoders.get(key)
                if decoder is None:
                    decoder = self._decoders[key] = codecs.getincrementaldecoder("utf-8")("replace")
                text = decoder.decode(text)
            *whole, rest = (self._partial.pop(key, "") + text).split("\n")
            for line in whole:
                if key in self._continued or not self._fits(line):  # a part of a long line, or one to cut
                    self._continued.discard(key)
                    lines.extend((part, True) for part in self._parts(line))
                else:
                    lines.append((line, False))
            if not self._fits(rest):  # too long to hold: its parts so far, but the last
                *parts, rest = self._parts(rest)
                lines.extend((part, True) for part in parts)
                self._continued.add(key)
            if rest:
                self._partial[key] = rest
        now = time.time()
        for line, part in lines:
            self._from_thread_worker(worker, self._line_fields(stream, line, now, part))

    def _fits(self, line: str) -> bool:
        """Whether `line` is at most `max_line` bytes (encoded only when its length leaves it in doubt)."""
        return len(line) * 4 <= self.max_line or len(line.encode(errors="surrogatepass")) <= self.max_line

    def _parts(self, line: str) -> list[str]:
        """`line` in parts of at most `max_line` bytes, cut between characters (empty: none), as `split_line`
        cuts a process worker's."""
        data = line.encode(errors="surrogatepass")
        return [part.decode(errors="surrogatepass") for part in split_line(data, self.max_line)]

    @staticmethod
    def _line_fields(stream: str, line: str, now: float, partial: bool = False) -> dict[str, Any]:
        fields = {"timestamp": now, "level": RAW_LEVELS[stream], "event": line, "stream": stream}
        if partial:
            fields["partial"] = True
        return fields

    def _from_thread_worker(self, worker: spoc.AbstractWorker, fields: dict[str, Any]) -> None:
        """Send `fields` through the worker's channel (`worker_record` writes them), so that they stand in order
        with its lifecycle events; outside its body, write them now."""
        try:
            worker.send_record(RECORD_TOPIC, **fields)
        except spoc.SpocError:
            self._emit([self._complete(worker, fields)])

    def _complete(self, worker: spoc.AbstractWorker, fields: Mapping[str, Any]) -> dict[str, Any]:
        """`fields` of a thread worker's record with the worker's, the pid and the server's names."""
        return _ordered({**fields, "worker": worker.name, "pid": os.getpid(), "server": self._server_of(worker)})

    @spoc.hookimpl
    def worker_record(self, worker: spoc.AbstractWorker, topic: str, data: dict[str, Any]) -> None:
        if topic == RECORD_TOPIC and self._server_of(worker) is not None:
            self._emit([self._complete(worker, data)])

    def _lifecycle(self, worker: spoc.AbstractWorker, server: str, level: str, event: str, **fields: Any) -> None:
        """Write a lifecycle record: it stands for spoc's own record of the event, so the ``spoc`` logger's
        level applies to it as to that record (``--log-level warning``: no "started" or "exited" lines)."""
        render, writer = self._render, self._writer
        if render is None or writer is None or not _lifecycle_logger.isEnabledFor(_LEVEL_NUMBERS[level]):
            return
        record = {
            "timestamp": time.time(),
            "level": level,
            "event": event,
            "worker": worker.name,
            "pid": worker.pid if isinstance(worker, spoc.ProcessWorker) else os.getpid(),
            "server": server,
            "logger": "spoc",
            **fields,
        }
        writer.write(render(record))

    def _dropped_line(self, count: int) -> bytes:
        render = self._render
        record = {
            "timestamp": time.time(),
            "level": "warning",
            "event": f"{count} line{'s' if count != 1 else ''} dropped: the destination did not keep up",
            "logger": "spoc.logging",
            "dropped": count,
        }
        return render(record) if render is not None else b""

    # ------------------------------------------------------------------ the server

    def _chosen_format(self) -> str:
        try:
            return choose_format(self.format, self.destination)
        except ValueError as exc:  # SPOC_LOG_FORMAT: the plugin's default, and say why
            name = choose_format(None, self.destination) if not os.environ.get(FORMAT_ENV) else "json"
            logger.error("%s; writing %s", exc, name)
            return name

    @spoc.hookimpl
    def server_start_failed(self, server: spoc.Server, error: Exception) -> None:
        """A configuration error before anything started: into the stream too, in its format (``spoc run``
        also says it on stderr), written at once: no writer runs yet."""
        notes = " ".join(getattr(error, "__notes__", ()))
        record = {
            "timestamp": time.time(),
            "level": "error",
            "event": f"server {server.name!r} could not start: {error}" + (f" {notes}" if notes else ""),
            "pid": os.getpid(),
            "server": server.name,
            "logger": "spoc",
        }
        data = renderer(self._chosen_format(), self.destination)(record)
        try:
            while data:
                data = data[os.write(self.destination, data) :]
        except OSError:  # the destination is gone: spoc run's line on stderr still says it
            pass

    @spoc.hookimpl(tryfirst=True)  # before other plugins log their start (spoc-plugin-metrics' "serving" line)
    def server_starting(self, server: spoc.Server) -> None:
        self._serving.add(server.name)
        name = self._chosen_format()
        self._format = name
        self._render = renderer(name, self.destination)
        self._writer = writer_for(self.destination)
        self._writer.report_dropped = self._dropped_line
        self._writer.report_gone = _say_gone
        self._writer.buffer = self.buffer
        _active.append(self)
        _process_hooks.install(_route_worker, _route_other, _route_record)

    @spoc.hookimpl
    def server_started(self, server: spoc.Server) -> None:
        if server.name in self._serving and self._writer is not None:
            self._writer.open()

    @spoc.hookimpl
    def server_stopping(self, server: spoc.Server) -> None:
        if server.name in self._serving:
            self._stop_began.setdefault(server.name, time.monotonic())

    @spoc.hookimpl
    def server_stopped(self, server: spoc.Server) -> None:
        if server.name not in self._serving:
            return
        self._serving.discard(server.name)
        for key, output in list(self._children.items()):
            if output.server == server.name:
                output.close()
                del self._children[key]
        _process_hooks.uninstall()
        if self in _active:
            _active.remove(self)
        if self._writer is not None:
            now = time.monotonic()
            stop_deadline = self._stop_began.pop(server.name, now) + server.shutdown_timeout
            unsaid = self._writer.close(max(now + 0.1, min(now + FLUSH_AT_STOP, stop_deadline)))
            lost, gone = self._writer.take_lost(), self._writer.gone
            if lost and gone is not None:  # said where spoc's own lines go without the plugin (stderr)
                logger.warning(
                    "server %r: %d line%s of the log stream dropped since its destination (fd %d) failed (%s: %s)",
                    server.name,
                    lost,
                    "s" if lost != 1 else "",
                    self.destination,
                    type(gone).__name__,
                    gone,
                )
            if unsaid:  # the destination is stuck: say it where spoc's own lines go without the plugin
                logger.warning(
                    "server %r: %d line%s dropped at the stop: the destination (fd %d) did not take them in time",
                    server.name,
                    unsaid,
                    "s" if unsaid != 1 else "",
                    self.destination,
                )

    # ------------------------------------------------------------------ workers, in the server

    @spoc.hookimpl
    def worker_joined(self, worker: spoc.AbstractWorker) -> None:
        worker.stash[_ROUTE] = self

    def _server_of(self, worker: spoc.AbstractWorker) -> str | None:
        """The name of `worker`'s server when this plugin serves it (it joined a server with this plugin), else None."""
        return worker.server_name if worker.stash.get(_ROUTE, None) is self else None

    @spoc.hookimpl
    def worker_stdio(
        self, server: spoc.Server, worker: spoc.AbstractWorker, channel: spoc.WorkerChannel
    ) -> dict[int, int] | None:
        if server.name not in self._serving:
            return None
        previous = self._children.pop(id(worker), None)
        if previous is not None:
            previous.close()
        output = ChildOutput(worker, server.name, channel, self._emit, self.tail_lines, self.max_line)
        if self._format == "json":
            output.emit_lines = self._emit_lines
        self._children[id(worker)] = output
        return {1: output.pipe_for(1), 2: output.pipe_for(2)}

    def _drain(self, worker: spoc.AbstractWorker) -> ChildOutput | None:
        output = self._children.get(id(worker))
        if output is not None:
            output.drain()
        return output

    def _marked_event(self, worker: spoc.AbstractWorker, level: str, event: str, **fields: Any) -> None:
        """The record of an event the child marked in its output ("startup", "error"): the worker's lines from
        before it, the record, then those held from after it."""
        server = self._server_of(worker)
        if server is None:
            return
        output = self._drain(worker)
        if fields.get("lifecycle") == "error" and output is not None and output.tail:
            fields["tail"] = list(output.tail)
        self._lifecycle(worker, server, level, event, **fields)
        if output is not None:
            output.release()

    @spoc.hookimpl
    def worker_started(self, worker: spoc.AbstractWorker) -> None:
        restarts = worker.restarts
        if restarts:
            self._marked_event(
                worker, "info", f"worker restarted (restart {restarts})", lifecycle="restarted", restarts=restarts
            )
        else:
            self._marked_event(worker, "info", "worker started", lifecycle="started")

    @spoc.hookimpl
    def worker_error(self, worker: spoc.AbstractWorker, error: spoc.ErrorRecord) -> None:
        exception = {"type": error.type_name, "message": error.message, "traceback": error.traceback}
        message = f"worker failed in {error.phase}(): {error.message or error.type_name}"
        self._marked_event(worker, "error", message, lifecycle="error", phase=error.phase, exception=exception)

    @spoc.hookimpl
    def worker_exited(self, worker: spoc.AbstractWorker, exit_info: spoc.WorkerExit) -> None:
        server = self._server_of(worker)
        if server is None:
            return
        output = self._children.pop(id(worker), None)
        if output is not None:
            output.close()
        if self._partial or self._decoders:
            self._flush_partial(worker)
        outcome, ok = exit_info.outcome, exit_info.ok
        fields: dict[str, Any] = {"lifecycle": "exited", "outcome": outcome, "exitcode": exit_info.exitcode}
        if exit_info.signal is not None:
            fields["signal"] = exit_info.signal
        if not ok and exit_info.error is None and output is not None and output.tail:
            fields["tail"] = list(output.tail)  # killed, or exited on its own: its error record did not show it
        self._lifecycle(worker, server, "info" if ok else "error", f"worker exited ({outcome})", **fields)

    def _flush_partial(self, worker: spoc.AbstractWorker) -> None:
        with self._lock:
            for key in [key for key in self._decoders if key[0] == id(worker)]:
                rest = self._decoders.pop(key).decode(b"", final=True)
                if rest:
                    self._partial[key] = self._partial.get(key, "") + rest
            keys = [key for key in self._partial if key[0] == id(worker)]
            texts = [(key, self._partial.pop(key), key in self._continued) for key in keys]
            self._continued -= {key for key in self._continued if key[0] == id(worker)}
        now = time.time()
        if texts:
            self._emit(
                [self._complete(worker, self._line_fields(key[1], text, now, part)) for key, text, part in texts]
            )

    # ------------------------------------------------------------------ inside a process worker's child

    @spoc.hookimpl
    def child_starting(self, worker: spoc.AbstractWorker) -> None:
        prepare_child(worker)

    @spoc.hookimpl
    def child_event(self, event: spoc.WorkerEvent) -> None:
        mark_event(event.kind)

    @spoc.hookimpl
    def child_stopping(self) -> None:
        flush_streams()


def _say_gone(exc: OSError) -> None:
    """Say on stderr, at once, that the stream's destination failed for good: written to fd 2 itself, since
    every line of the process, spoc's own included, goes to that destination while the plugin runs."""
    text = (
        f"spoc-plugin-logging: the log stream's destination failed ({type(exc).__name__}: {exc}): its lines are "
        f"dropped from now on; how many is said when the server stops\n"
    )
    try:
        os.write(2, text.encode(errors="backslashreplace"))
    except OSError:  # stderr is gone too (the same broken pipe): the exit code is all that is left
        pass


_FIRST = ("timestamp", "level", "event", "worker", "pid", "server", "logger", "stream")


def _ordered(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`fields` with the common ones first, in their order."""
    ordered = {key: fields[key] for key in _FIRST if key in fields}
    ordered.update((key, value) for key, value in fields.items() if key not in ordered)
    return ordered


class Unasked:
    """What the entry point installs when ``SPOC_LOG_FORMAT`` names no format: a plugin with no hooks.

    Installed and not asked, spoc-plugin-logging changes nothing: a program's
    output stays where it went, as it was. It implements no hook, so that it
    costs a server nothing either (pluggy looks at every attribute of a
    plugin each time a server registers it, and a plugin with hooks of the
    child is registered for the children too, and called in each).
    """

    name = "logging"

    def __repr__(self) -> str:
        return f"<spoc-plugin-logging, not asked: set {FORMAT_ENV} or run spoc run --log-format>"


_installed: list[Logging | Unasked] = []


def installed_plugin() -> Logging | Unasked:
    """The plugin the entry point installs, chosen once per process when it is first loaded: a `Logging` when
    ``SPOC_LOG_FORMAT`` names a format (``spoc run --log-format`` sets it), else `Unasked`."""
    if not _installed:
        _installed.append(Logging() if os.environ.get(FORMAT_ENV, "").strip() else Unasked())
    return _installed[0]
