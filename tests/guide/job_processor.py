# The user guide's example, copied verbatim from ../shared/spec/workers-guide.txt (lines 465-509).
from spoc.workers import Server  # prelude: imported by an earlier block of the guide

from spoc.workers import ThreadWorker
from queue import Queue
import time

class JobProcessor(ThreadWorker):
    """Process jobs from a shared queue."""

    def __init__(self, name, job_queue):
        super().__init__(name)
        self.job_queue = job_queue

    def main(self):
        """Process jobs until stopped."""
        while self.is_running:
            try:
                # Get job with timeout to allow checking is_running
                job = self.job_queue.get(timeout=1.0)
                self.process_job(job)
                self.job_queue.task_done()
            except Exception:
                # Queue empty, continue
                continue

    def process_job(self, job):
        """Process a single job."""
        print(f"{self.name} processing: {job}")
        time.sleep(0.5)  # Simulate work

# Create shared queue
job_queue = Queue()

# Create server with multiple workers
server = Server(name="JobServer")
server.add_worker(JobProcessor("Worker-1", job_queue))
server.add_worker(JobProcessor("Worker-2", job_queue))

# Add jobs
for i in range(10):
    job_queue.put(f"Job-{i}")

# Process jobs
server.start()
job_queue.join()  # Wait for all jobs to complete
server.stop()
server.join_all()
