"""A test plugin that captures the stdout and stderr of process workers' children (the worker_stdio hook)."""

from __future__ import annotations

import os
from typing import Any

from spoc import hookimpl


class CapturesOutput:
    """Gives each process worker's child pipes for its stdout and stderr, read on the monitor thread; once the
    worker has ended, reads what is left and notes whether the pipe was at its end (no write end left open)."""

    name = "captures-output"

    def __init__(self) -> None:
        self.output: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.reading: dict[int, tuple[int, Any]] = {}  # read end: the fd number it captures, the channel
        self.at_end: list[bool] = []

    @hookimpl
    def worker_stdio(self, channel: Any) -> dict[int, int]:
        given = {}
        for number in (1, 2):
            read_end, write_end = os.pipe()
            os.set_blocking(read_end, False)
            self.reading[read_end] = (number, channel)
            channel.watch(read_end, lambda fd=read_end: self._read(fd))
            given[number] = write_end
        return given

    def _read(self, fd: int) -> bool:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        self.output[self.reading[fd][0]] += data
        return not data

    @hookimpl
    def worker_exited(self) -> None:
        for fd, (_, channel) in list(self.reading.items()):
            while not (ended := self._read(fd)):
                try:
                    os.read(fd, 0)
                except BlockingIOError:
                    break
            self.at_end.append(ended)
            channel.unwatch(fd)
            os.close(fd)
            del self.reading[fd]
