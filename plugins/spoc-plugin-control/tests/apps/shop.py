"""A service to operate: a thread worker, a replicated process worker, and one that fails until a file exists."""

from __future__ import annotations

import os
import sys

import spoc


class Mailer(spoc.ThreadWorker):
    def main(self) -> None:
        while not self.wait(60):
            pass


class Poller(spoc.ProcessWorker):
    replicas = 2

    def main(self) -> None:
        while not self.wait(60):
            pass


class Flaky(spoc.ProcessWorker):
    """Fails at once unless the file FLAKY_FIXED names exists."""

    def main(self) -> None:
        if not os.path.exists(os.environ.get("FLAKY_FIXED", "/nonexistent")):
            raise RuntimeError("the database is not there")
        while not self.wait(60):
            pass


server = spoc.Server(os.environ.get("SHOP_NAME", "shop"))
server.add_worker(Mailer("mailer"))
server.add_worker(Poller("poller"))
if "FLAKY_FIXED" in os.environ:
    server.add_worker(Flaky("flaky"))

if __name__ == "__main__":
    sys.exit(server.run_forever().exit_code)
