"""One structured log stream from thread and process workers (needs spoc-plugin-logging).

    pip install ./plugins/spoc-plugin-logging
    python examples/structured_logs.py                        # readable lines on a terminal
    SPOC_LOG_FORMAT=json python examples/structured_logs.py   # one JSON object per line

A thread worker and a process worker print and log; a third process worker
crashes after a few lines, and its last lines come with its death. Ctrl+C
stops the rest.
"""

from __future__ import annotations

import logging
import os
import signal

from spoc import ProcessWorker, Server, ThreadWorker

log = logging.getLogger("example")


class Ticker(ThreadWorker):
    def main(self) -> None:
        beat = 0
        while not self.wait(1.0):
            beat += 1
            log.info("tick", extra={"beat": beat})


class Resizer(ProcessWorker):
    def main(self) -> None:
        for n in range(3):
            print(f"resizing image {n}")
            log.info("resized", extra={"image": n, "ms": 10 + n})
        print("Press Ctrl+C to stop.")
        while not self.wait(60):
            pass


class Crasher(ProcessWorker):
    restart_policy = "never"  # with spoc-plugin-restart installed: let it stay dead

    def main(self) -> None:
        print("loading the model")
        print("model loaded: 3 layers")
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would


server = Server("structured-logs")
server.add_worker(Ticker("ticker"))
server.add_worker(Resizer("resizer"))
server.add_worker(Crasher("crasher"))

if __name__ == "__main__":
    raise SystemExit(server.run_forever().exit_code)
