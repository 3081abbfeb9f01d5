# The user guide's example, copied verbatim from ../shared/spec/workers-guide.txt (lines 71-98).

from spoc.workers import ThreadWorker
import time

class LogWatcher(ThreadWorker):
    """Watch a log file for new entries."""

    def setup(self):
        """Initialize the log file handle."""
        self.log_file = open("/var/log/app.log", "r")
        self.log_file.seek(0, 2)  # Move to end of file

    def main(self):
        """Watch for new log lines."""
        while self.is_running:
            line = self.log_file.readline()
            if line:
                self.process_log_line(line)
            else:
                time.sleep(0.1)  # Wait for new content

    def teardown(self):
        """Close the log file."""
        self.log_file.close()

    def process_log_line(self, line):
        """Process a single log line."""
        if "ERROR" in line:
            print(f"Error detected: {line.strip()}")
