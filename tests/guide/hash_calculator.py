# The user guide's example, copied verbatim from ../shared/spec/workers-guide.txt (lines 118-149).

from spoc.workers import ProcessWorker
import hashlib

class HashCalculator(ProcessWorker):
    """Calculate hashes for files in a queue."""

    def setup(self):
        """Initialize worker state."""
        self.processed_count = 0

    def main(self):
        """Process files from queue."""
        while self.is_running:
            # Simulate getting file from queue
            file_path = self.get_next_file()

            if file_path:
                self.calculate_hash(file_path)
                self.processed_count += 1

    def calculate_hash(self, file_path):
        """Calculate SHA-256 hash of a file."""
        sha256 = hashlib.sha256()
        with open(file_path, "rb") as f:
            for chunk in iter(lambda: f.read(4096), b""):
                sha256.update(chunk)
        return sha256.hexdigest()

    def get_next_file(self):
        """Get next file from queue (placeholder)."""
        # In real implementation, get from shared queue
        return None
