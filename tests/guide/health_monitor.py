# The user guide's example, copied verbatim from ../shared/spec/workers-guide.txt (lines 655-688).

from spoc.workers import ThreadWorker
import time

class HealthMonitor(ThreadWorker):
    """Monitor and restart failed workers."""

    def __init__(self, name, workers_to_monitor):
        super().__init__(name)
        self.workers = workers_to_monitor

    def main(self):
        """Check worker health periodically."""
        while self.is_running:
            for worker in self.workers:
                if not worker._thread_or_process.is_alive():
                    print(f"Worker {worker.name} died, restarting...")
                    self.restart_worker(worker)

            time.sleep(5)  # Check every 5 seconds

    def restart_worker(self, worker):
        """Restart a failed worker."""
        # Create new instance of same worker type
        new_worker = type(worker)(worker.name)
        new_worker.start()

        # Replace in monitoring list
        idx = self.workers.index(worker)
        self.workers[idx] = new_worker

    def lifecycle(self, event_type, **data):
        """Handle lifecycle events."""
        if event_type == "error":
            print(f"Health monitor detected error: {data.get('exception')}")
