"""spoc-plugin-logging's figures: a process worker's lines through the plugin to a JSON stream, against raw pipes.

- throughput: lines per second from a forked process worker's ``print()`` to the server's JSON output, as a
  sink process reading that output sees them (from the first marked line to the last); floor: the same child
  code, its stdout a pipe that a thread of the parent reads and writes on to the sink. Both children's stdout
  is line-buffered, as the plugin makes it (so that a SIGKILL loses no printed line); a floor child with
  Python's default block buffering is printed for information. Also against a ``multiprocessing``
  QueueHandler/QueueListener pipeline, the child logging each line and the parent's listener writing it
  as JSON.
- delay: from a timestamp the child prints (CLOCK_MONOTONIC, one clock for every process) to its arrival at
  the sink, one line per millisecond; same floor.
- stop latency: the core's stop benchmark (100 thread and 4 process workers, the ``spoc`` logger at WARNING) with
  the plugin writing the stream, against no plugin; for information, with the plugin installed and not asked,
  and at INFO: the plugin writing a record of each worker's end against the core's own records written by a
  StreamHandler.

Needs spoc-plugin-logging; `run.py --section logging` says so and skips when it is missing.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import logging.handlers
import multiprocessing
import os
import select
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from spoc import ProcessWorker, Server

LINES = 50_000
TEXT = "x" * 80
DELAY_LINES = 200
BEGIN, END = "BENCH-BEGIN", "BENCH-END"

SINK = r"""
import os, re, sys, time
mode = sys.argv[1]
tail = b""
began = None
delays = []
stamp = re.compile(rb"DELAY (\d+\.\d+)")
while True:
    chunk = os.read(0, 1 << 20)
    now = time.monotonic()
    if not chunk:
        break
    seen = tail + chunk
    if mode == "delay":
        delays.extend(now - float(m.group(1)) for m in stamp.finditer(chunk))
    if began is None and b"BENCH-BEGIN" in seen:
        began = now
    if b"BENCH-END" in seen:
        if mode == "delay":
            print(" ".join(repr(d) for d in delays))
        else:
            print(now - began)
        sys.stdout.flush()
        break
    tail = chunk[-16:]
while os.read(0, 1 << 20):  # what comes after (a server's last records) is read, until the pipeline closes
    pass
"""


def missing() -> str | None:
    """Why the benchmark cannot run here, or None."""
    if importlib.util.find_spec("spoc_logging") is None:
        return "spoc-plugin-logging is not installed (nox -s bench installs it)"
    return None


class Sink:
    """A process that reads what is written to `fd` and says when the marked lines arrived."""

    def __init__(self, mode: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SINK, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.process.stdin is not None
        self.fd = self.process.stdin.fileno()

    def result(self, timeout: float = 120.0) -> str:
        assert self.process.stdout is not None and self.process.stdin is not None
        if not select.select([self.process.stdout], [], [], timeout)[0]:
            self.process.kill()
            raise RuntimeError(f"the sink saw no {END} within {timeout:g}s: a line was dropped, or it stalled")
        return self.process.stdout.readline().decode()

    def close(self) -> None:
        """Close its pipes, once the pipeline that wrote to it has ended (a server still writing to a closed fd
        would say that its stream's destination failed)."""
        assert self.process.stdout is not None and self.process.stdin is not None
        self.process.stdin.close()
        self.process.stdout.close()
        self.process.wait(30)


def write_lines(delay: bool, wait: Callable[[float], object]) -> None:
    """The worker's body, the same in every pipeline."""
    import time

    print(BEGIN)
    if delay:
        for _ in range(DELAY_LINES):
            print(f"DELAY {time.monotonic():.9f}")
            wait(0.001)
    else:
        for _ in range(LINES):
            print(TEXT)
    print(END)


class Prints(ProcessWorker):
    def __init__(self, name: str, delay: bool) -> None:
        super().__init__(name, start_method="fork")
        self.delay = delay

    def main(self) -> None:
        write_lines(self.delay, self.wait)


def through_spoc(mode: str) -> str:
    from spoc_logging import Logging

    sink = Sink(mode)
    # A buffer for every line (8 MB of JSON): this measures the pipeline, not what is dropped when the sink lags
    # (with the default 8 MiB, a lagging sink lost lines, the end marker once, and the run waited for it forever).
    server = Server("bench-logging", plugins=[Logging(format="json", destination=sink.fd, buffer=1 << 30)])
    server.add_worker(Prints("printer", delay=mode == "delay"))
    server.start()
    said = sink.result()
    server.stop()
    server.join_all(30)
    sink.close()
    return said


def _raw_child(write_end: int, delay: bool, line_buffered: bool) -> None:
    os.dup2(write_end, 1)
    if line_buffered:
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    import time

    write_lines(delay, time.sleep)
    sys.stdout.flush()


def through_raw_pipe(mode: str, line_buffered: bool = True) -> str:
    sink = Sink(mode)
    read_end, write_end = os.pipe()

    def forward() -> None:
        try:
            while data := os.read(read_end, 1 << 16):
                os.write(sink.fd, data)
        except OSError:  # the sink is gone (it failed)
            pass

    context = multiprocessing.get_context("fork")
    child = context.Process(target=_raw_child, args=(write_end, mode == "delay", line_buffered))
    child.start()
    os.close(write_end)
    reader = threading.Thread(target=forward)
    reader.start()
    said = sink.result()
    child.join()
    reader.join()
    sink.close()
    os.close(read_end)
    child.close()
    return said


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {"timestamp": record.created, "level": record.levelname.lower(), "event": record.getMessage()}
        )


def _queue_child(log_queue: Any) -> None:
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(log_queue)]
    root.setLevel(logging.INFO)
    log = logging.getLogger("bench")
    log.info(BEGIN)
    for _ in range(LINES):
        log.info(TEXT)
    log.info(END)


def through_queue_handler() -> str:
    sink = Sink("throughput")
    context = multiprocessing.get_context("fork")
    log_queue = context.Queue()
    handler = logging.StreamHandler(os.fdopen(os.dup(sink.fd), "w"))
    handler.setFormatter(_JsonLines())
    listener = logging.handlers.QueueListener(log_queue, handler)
    listener.start()
    child = context.Process(target=_queue_child, args=(log_queue,))
    child.start()
    said = sink.result()
    child.join()
    listener.stop()
    handler.stream.close()
    sink.close()
    child.close()
    log_queue.close()
    return said


def rate(said: str) -> float:
    return (LINES + 2) / float(said)


def median_delay(said: str) -> float:
    return statistics.median(float(d) for d in said.split())


def measure(
    rounds: int,
    row: Callable[..., None],
    paired_medians: Callable[..., list[float]],
    stop_latency: Callable[..., float],
) -> int:
    """Print the rows (run.py's `row`, measures taken in turns by its `paired_medians`); return the targets missed."""
    import spoc_logging
    from spoc_logging import Logging

    missed = 0
    spoc_rate, floor_rate, queue_rate, block_rate = paired_medians(
        rounds,
        lambda: rate(through_spoc("throughput")),
        lambda: rate(through_raw_pipe("throughput")),
        lambda: rate(through_queue_handler()),
        lambda: rate(through_raw_pipe("throughput", line_buffered=False)),
    )
    ok = spoc_rate >= 0.5 * floor_rate
    missed += not ok
    row("lines/s, print() to JSON (raw pipe)", spoc_rate / 1e3, floor_rate / 1e3, "k/s", ">=0.5x", ok)
    ok = spoc_rate > queue_rate
    missed += not ok
    row("lines/s, against QueueHandler->JSON", spoc_rate / 1e3, queue_rate / 1e3, "k/s", ">1x", ok)
    row("  raw pipe, block-buffered child", spoc_rate / 1e3, block_rate / 1e3, "k/s", "(information)", True)
    spoc_delay, floor_delay = paired_medians(
        rounds, lambda: median_delay(through_spoc("delay")), lambda: median_delay(through_raw_pipe("delay"))
    )
    row("delay per line, print() to output", spoc_delay * 1e6, floor_delay * 1e6, "us", "(information)", True)
    with open(os.devnull, "wb") as devnull, open(os.devnull, "w") as text_devnull:
        # Three times the rounds: two runs of the same stop differ by 5-10% on a loaded 2-core machine, as much
        # as the target allows.
        writing, unasked, without, writing_info, handler_info = paired_medians(
            3 * rounds,
            lambda: stop_latency([Logging(format="json", destination=devnull.fileno())]),
            lambda: stop_latency([type(spoc_logging.plugin)()]),  # as installed: it writes nothing unless asked
            lambda: stop_latency([]),
            lambda: stop_latency([Logging(format="json", destination=devnull.fileno())], logging.INFO),
            lambda: _with_spoc_handler(logging.StreamHandler(text_devnull), lambda: stop_latency([], logging.INFO)),
        )
    ok = writing <= 1.1 * without
    missed += not ok
    row("stop latency, logging writing (no plugin)", writing * 1e3, without * 1e3, "ms", "<=1.1x", ok)
    row("  installed, not asked (no plugin)", unasked * 1e3, without * 1e3, "ms", "(information)", True)
    row("  at INFO: exit records (StreamHandler)", writing_info * 1e3, handler_info * 1e3, "ms", "(information)", True)
    return missed


def _with_spoc_handler(handler: logging.Handler, measure: Callable[[], float]) -> float:
    """`measure()` with `handler` on the ``spoc`` logger: the core writing its own records of the stop, as text."""
    logger = logging.getLogger("spoc")
    logger.addHandler(handler)
    try:
        return measure()
    finally:
        logger.removeHandler(handler)
