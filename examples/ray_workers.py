"""Workers as Ray actors: a trainer and an async watcher on a local Ray, with their records and a clean stop.

Needs spoc-plugin-ray and Ray: pip install ./plugins/spoc-plugin-ray[ray]. Run it, then press Ctrl+C.
"""

import asyncio
import os

import spoc
from spoc import ProcessWorker, Server


class Trainer(ProcessWorker):
    backend = "ray"
    ray_num_cpus = 1

    def main(self):
        step = 0
        while not self.wait(0.5):
            step += 1
            self.send_record("example.progress", step=step, pid=os.getpid())

    def teardown(self):
        self.send_record("example.checkpoint")


class Watcher(ProcessWorker):  # a child process by its class; the server below puts this one on Ray
    async def main(self):
        while not await self.sleep(1.0):
            self.send_record("example.watch", loop=type(asyncio.get_running_loop()).__name__)


class Report:
    """Prints what the workers say, as the server hears it (on its monitor thread)."""

    name = "example-report"

    @spoc.hookimpl
    def worker_started(self, worker, event):
        print(f"{worker.name}: started in actor pid {event.pid}", flush=True)

    @spoc.hookimpl
    def worker_record(self, worker, topic, data):
        if topic == "example.progress" and data["step"] == 1:
            print(f"{worker.name}: first step done", flush=True)
        elif topic == "example.checkpoint":
            print(f"{worker.name}: checkpoint saved", flush=True)

    @spoc.hookimpl
    def worker_exited(self, worker, exit_info):
        print(f"{worker.name}: {exit_info.outcome}", flush=True)


if __name__ == "__main__":
    server = Server("ray-example", plugins=[Report()])
    server.add_worker(Trainer("trainer"))
    server.add_worker(Watcher("watcher", plugin_options={"backend": "ray"}))  # the option wins over the class
    print("Press Ctrl+C to stop.", flush=True)
    outcome = server.run_forever()
    print(f"Shutdown {'clean' if outcome.ok else 'with failures'} (reason: {outcome.reason})", flush=True)
