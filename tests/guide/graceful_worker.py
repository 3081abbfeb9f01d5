# The user guide's example, copied verbatim from ../shared/spec/workers-guide.txt (lines 326-350).
import time  # prelude: imported by an earlier block of the guide

from spoc.workers import Server, ThreadWorker
import signal

class GracefulWorker(ThreadWorker):
    def setup(self):
        """Initialize state."""
        self.items_processed = 0

    def main(self):
        """Process items until stopped."""
        while self.is_running:
            # Simulate processing
            self.items_processed += 1
            time.sleep(0.5)

    def teardown(self):
        """Save state before shutdown."""
        print(f"Processed {self.items_processed} items before shutdown")

# Create and configure server
server = Server(name="GracefulServer")
server.add_worker(GracefulWorker(name="Worker-1"))

# Run until SIGINT (Ctrl+C) or SIGTERM
server.run_forever()
