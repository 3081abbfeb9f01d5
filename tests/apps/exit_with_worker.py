"""Start a process worker and let the program end at once: does interpreter exit wait for it?

python tests/apps/exit_with_worker.py daemon|non-daemon
"""

import os
import sys

from spoc.workers import ProcessWorker, Server


class Finisher(ProcessWorker):
    def main(self) -> None:
        os.write(1, b"WORKING\n")
        self.wait(1.0)  # stop (parent gone) or one second, whichever comes first
        os.write(1, f"FINISHED stop_requested={self.stop_requested}\n".encode())


server = Server()
server.add_worker(Finisher("finisher", daemon=sys.argv[1] == "daemon"))
server.start()
os.write(1, b"MAIN-DONE\n")
