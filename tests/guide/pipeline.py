# The user guide's example, copied verbatim from ../shared/spec/workers-guide.txt (lines 568-649).
from spoc.workers import Server  # prelude: imported by an earlier block of the guide

from spoc.workers import ThreadWorker, ProcessWorker
from queue import Queue

class StageWorker(ThreadWorker):
    """Base class for pipeline stage workers."""

    def __init__(self, name, input_queue, output_queue):
        super().__init__(name)
        self.input_queue = input_queue
        self.output_queue = output_queue

    def main(self):
        """Process items from input to output."""
        while self.is_running:
            try:
                item = self.input_queue.get(timeout=1.0)
                result = self.process_item(item)
                if result is not None:
                    self.output_queue.put(result)
                self.input_queue.task_done()
            except Exception:
                continue

    def process_item(self, item):
        """Override this method for stage-specific processing."""
        raise NotImplementedError

class FetchStage(StageWorker):
    """Stage 1: Fetch raw data."""

    def process_item(self, item):
        """Fetch data."""
        return {"id": item, "raw_data": f"data-{item}"}

class TransformStage(ProcessWorker):
    """Stage 2: Transform data (CPU-intensive)."""

    def __init__(self, name, input_queue, output_queue):
        super().__init__(name)
        self.input_queue = input_queue
        self.output_queue = output_queue

    def main(self):
        """Transform items."""
        while self.is_running:
            try:
                item = self.input_queue.get(timeout=1.0)
                result = self.transform(item)
                self.output_queue.put(result)
                self.input_queue.task_done()
            except Exception:
                continue

    def transform(self, item):
        """CPU-intensive transformation."""
        # Simulate heavy processing
        return {**item, "transformed": True}

class SaveStage(StageWorker):
    """Stage 3: Save results."""

    def process_item(self, item):
        """Save to database."""
        print(f"Saved: {item}")
        return None  # End of pipeline

# Create pipeline
fetch_to_transform = Queue()
transform_to_save = Queue()
input_queue = Queue()

server = Server(name="Pipeline")
server.add_worker(FetchStage("Fetch", input_queue, fetch_to_transform))
server.add_worker(TransformStage("Transform", fetch_to_transform, transform_to_save))
server.add_worker(SaveStage("Save", transform_to_save, Queue()))

# Feed pipeline
for i in range(10):
    input_queue.put(i)

# Run pipeline
server.run_forever()
