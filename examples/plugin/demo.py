"""A server whose workers count their jobs with spoc-plugin-summary (installed, so discovered).

Install the plugin first (`pip install examples/plugin`), then run this: at
shutdown the plugin logs one line per worker.
"""

import logging

import spoc_summary
from spoc import Server
from spoc.workers import ProcessWorker, ThreadWorker

logging.basicConfig(level=logging.INFO, format="%(message)s")


class Jobs:
    def main(self):
        for _ in range(3):
            spoc_summary.job_done(self)
        self.stop()


class ThreadJobs(Jobs, ThreadWorker):
    pass


class ProcessJobs(Jobs, ProcessWorker):
    pass


server = Server("summary-demo")
server.add_worker(ThreadJobs("thready"))
server.add_worker(ProcessJobs("processy"))
exit_info = server.run_forever()
print("installed plugins:", ", ".join(p.name for p in server.plugins if p.source == "entry point"))
