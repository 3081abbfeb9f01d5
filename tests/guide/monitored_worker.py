# The user guide's example, copied verbatim from ../shared/spec/workers-guide.txt (lines 232-263).
import time  # prelude: imported by an earlier block of the guide

from spoc.workers import ThreadWorker

class MonitoredWorker(ThreadWorker):
    """Worker with lifecycle event handling."""

    def lifecycle(self, event_type, **data):
        """
        Handle lifecycle events.

        Args:
            event_type: Type of event ("startup", "shutdown", "error")
            **data: Additional event data (e.g., exception for errors)
        """
        match event_type:
            case "startup":
                print(f"{self.name} is starting up")
                self.context.start_time = time.time()

            case "shutdown":
                elapsed = time.time() - self.context.start_time
                print(f"{self.name} ran for {elapsed:.2f} seconds")

            case "error":
                exception = data.get("exception")
                print(f"{self.name} error: {exception}")
                # Log to monitoring system, send alerts, etc.

    def main(self):
        """Worker main loop."""
        while self.is_running:
            # Do work
            time.sleep(1)
