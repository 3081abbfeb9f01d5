"""A consumer whose service is down while the file named by $OUTAGE_FILE exists; for `spoc run outage:server`.

No Supervisor is given: the installed spoc-plugin-restart supervises it with its defaults. An attempt
while the service is down fails in setup; once it is back the consumer prints ``UP restarts=<n>`` and
runs until stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

from spoc import ProcessWorker, Server


class Consumer(ProcessWorker):
    def setup(self) -> None:
        if Path(os.environ["OUTAGE_FILE"]).exists():
            raise ConnectionRefusedError(f"{self.name}: the broker refused the connection")

    def main(self) -> None:
        print(f"UP restarts={self.restarts}", flush=True)
        while not self.wait(60):
            pass


server = Server("outage")
server.add_worker(Consumer("consumer"))
