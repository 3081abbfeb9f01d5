# The user guide's example, copied verbatim from ../shared/spec/workers-guide.txt (lines 515-562).
from spoc.workers import Server  # prelude: imported by an earlier block of the guide

from spoc.workers import ThreadWorker
import time
from datetime import datetime

class PeriodicWorker(ThreadWorker):
    """Execute tasks on a schedule."""

    def __init__(self, name, interval_seconds):
        super().__init__(name)
        self.interval = interval_seconds

    def main(self):
        """Run task periodically."""
        while self.is_running:
            start_time = time.time()

            # Execute the task
            self.execute_task()

            # Sleep for remaining interval
            elapsed = time.time() - start_time
            sleep_time = max(0, self.interval - elapsed)

            # Sleep in small chunks to check is_running
            while sleep_time > 0 and self.is_running:
                time.sleep(min(1.0, sleep_time))
                sleep_time -= 1.0

    def execute_task(self):
        """Override this method with your task logic."""
        print(f"[{datetime.now()}] Task executed")

class DataSyncWorker(PeriodicWorker):
    """Sync data every 5 minutes."""

    def __init__(self, name):
        super().__init__(name, interval_seconds=300)

    def execute_task(self):
        """Sync data from remote source."""
        print(f"Syncing data at {datetime.now()}")
        # Perform sync logic here

# Run periodic worker
worker = DataSyncWorker(name="DataSync")
server = Server()
server.add_worker(worker)
server.run_forever()
