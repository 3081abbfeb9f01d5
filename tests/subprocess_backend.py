"""Backends that run each worker in a ``python -m`` subprocess and stream its events back over a pipe.

Written with spoc's public API only, as a plugin would be: the server's one
monitor thread reads the pipe (`WorkerChannel.watch`), and the subprocess's stderr is what the plugins'
``worker_stdio`` give (`WorkerChannel.stdio`). The ``subprocess``
backend runs a `ThreadWorker`'s life there with `WorkerChannel.run_life`; the
``hosted`` backend runs a `ProcessWorker`'s there as in its child, the
server's child hooks included (`WorkerChannel.hosted_life`). Run as ``python
-m subprocess_backend`` it is that subprocess: the pickled worker (or its
hosted life) comes on stdin, then one byte asks it to stop; its events go out
on stdout, each a 4-byte length and a pickle.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from typing import Any

from spoc import ProcessWorker, ThreadWorker, hookimpl
from spoc.backends import Backend, HostedLife, Runner, WorkerChannel, WorkerEvent


class SubprocessBackend(Backend):
    name = "subprocess"
    worker_type: Any = ThreadWorker

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def launch(self, worker: Any, channel: WorkerChannel) -> Runner:
        here = os.path.dirname(os.path.abspath(__file__))  # where `python -m` finds this module and the worker's
        stdio = channel.stdio()  # what the plugins ask for; its stdout carries the events, so it gets stderr alone
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", __name__],
                cwd=here,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stdio.get(2),
            )
        finally:
            for given in stdio.values():  # the subprocess has its copy
                os.close(given)
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(pickle.dumps(channel.hosted_life() if isinstance(worker, ProcessWorker) else worker))
        child.stdin.flush()
        self.children[worker.name] = child
        fd, pending, ended = child.stdout.fileno(), bytearray(), []

        def on_readable() -> None:
            data = os.read(fd, 65536)
            pending.extend(data)
            while len(pending) >= 4 and len(pending) >= 4 + (size := int.from_bytes(pending[:4], "big")):
                event = pickle.loads(pending[4 : 4 + size])
                del pending[: 4 + size]
                ended.extend([event] if event.kind == "exit" else [])
                channel.send(event)
            if not data:  # the subprocess has ended: its last word, or the signal that ended it
                channel.unwatch(fd)
                if not ended:
                    code = child.wait()
                    if isinstance(worker, ProcessWorker):  # a hosted life: its host died under it, and says how
                        channel.exited(None, f"its host process {child.pid} ended ({code})")
                    else:
                        channel.exited(code)

        channel.watch(fd, on_readable)
        return Popened(child)

    def stop(self, worker: Any) -> None:
        child = self.children[worker.name]
        if child.poll() is None and child.stdin is not None:
            child.stdin.write(b"S")
            child.stdin.flush()

    def terminate(self, worker: Any) -> bool:
        self.children[worker.name].terminate()
        return True

    def kill(self, worker: Any) -> bool:
        self.children[worker.name].kill()
        return True

    def close(self) -> None:
        for child in self.children.values():
            child.wait()
            for pipe in (child.stdin, child.stdout):
                if pipe is not None:
                    pipe.close()


class HostedBackend(SubprocessBackend):
    name = "hosted"
    worker_type = ProcessWorker


class Popened:
    """A subprocess as a `Runner`."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child

    def is_alive(self) -> bool:
        return self.child.poll() is None

    def join(self, timeout: float | None = None) -> None:
        try:
            self.child.wait(timeout)
        except subprocess.TimeoutExpired:
            pass


class SubprocessPlugin:
    name = "subprocess-backend"

    @hookimpl
    def backend_register(self) -> list[Backend]:
        return [SubprocessBackend(), HostedBackend()]


def _live_here() -> int:
    """The subprocess: run the worker (or life) that comes on stdin, its events to stdout, until a byte asks it to
    stop."""
    received = pickle.load(sys.stdin.buffer)
    out, lock = sys.stdout.buffer, threading.Lock()
    sys.stdout = sys.stderr  # what the worker prints must not mix with its events

    def send(event: WorkerEvent) -> None:
        data = pickle.dumps(event)
        with lock:
            out.write(len(data).to_bytes(4, "big") + data)
            out.flush()

    threading.Thread(target=lambda: (sys.stdin.buffer.read(1), received.stop()), daemon=True).start()
    if isinstance(received, HostedLife):
        return received.run(send)
    return WorkerChannel(received, send).run_life()


if __name__ == "__main__":
    sys.exit(_live_here())
