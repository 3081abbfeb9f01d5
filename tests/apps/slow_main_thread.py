"""A server whose main thread is slow to take a SIGTERM sent to the whole process group.

Every thread of the server blocks SIGTERM (the main thread blocks it before
run_forever(), whose threads inherit the mask) until its process worker has
ended (at most 10 s), when the main thread unblocks it: a stop sent to the
group reaches the worker's child, which ends by it after its quick teardown,
while the server's own copy waits, pending, as when no thread of the server
gets a CPU on a loaded machine.
Prints ``READY`` once the worker runs, and ``RESULT`` lines at the end.
"""

from __future__ import annotations

import signal
import sys
import time

from spoc import ProcessWorker, Server, hookimpl


class Quick(ProcessWorker):
    def main(self) -> None:
        print("READY", flush=True)
        self.wait()

    def teardown(self) -> None:
        print(f"TEARDOWN {self.name}", flush=True)


class HoldsTheMainThread:
    """At server_started, on run_forever()'s main thread: SIGTERM waits until the worker has ended."""

    name = "holds-the-main-thread"

    @hookimpl
    def server_started(self, server: Server) -> None:
        worker = server.workers[0]
        deadline = time.monotonic() + 10
        while worker.exit_info is None and time.monotonic() < deadline:
            time.sleep(0.01)  # nothing to wait on without a hook: the monitor's would wait for this one
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])


server = Server("slow-main", plugins=[HoldsTheMainThread()])
server.add_worker(Quick("quick", start_method=sys.argv[1] if len(sys.argv) > 1 else "fork"))

if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    outcome = server.run_forever()
    print(f"RESULT ok={outcome.ok} reason={outcome.reason} signal={outcome.signal}", flush=True)
    print(f"OUTCOME {' '.join(f'{e.worker}={e.outcome}' for e in outcome.exits)}", flush=True)
    raise SystemExit(outcome.exit_code)
