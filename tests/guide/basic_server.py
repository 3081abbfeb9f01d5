# The user guide's example, copied verbatim from ../shared/spec/workers-guide.txt (lines 277-299).
import time  # prelude: imported by an earlier block of the guide

from spoc.workers import Server, ThreadWorker, ProcessWorker

class Worker1(ThreadWorker):
    def main(self):
        while self.is_running:
            print(f"{self.name} working...")
            time.sleep(1)

class Worker2(ProcessWorker):
    def main(self):
        while self.is_running:
            print(f"{self.name} processing...")
            time.sleep(1)

# Create server
server = Server(name="MyAppServer")

# Add workers
server.add_worker(Worker1(name="ThreadWorker-1"))
server.add_worker(Worker2(name="ProcessWorker-1"))

# Start all workers and run until interrupted
server.run_forever()
