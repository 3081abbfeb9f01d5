# The user guide's example, copied verbatim from ../shared/spec/workers-guide.txt (lines 371-411, 440-447).

from spoc.workers import ThreadWorker
import asyncio

class AsyncAPIWorker(ThreadWorker):
    """Worker that makes async HTTP requests."""

    async def setup(self):
        """Async setup method."""
        # Create async HTTP client
        self.session = await self.create_session()

    async def main(self):
        """Async main loop."""
        while self.is_running:
            # Fetch data from API
            data = await self.fetch_data()
            await self.process_data(data)
            await asyncio.sleep(5)

    async def teardown(self):
        """Async cleanup."""
        await self.session.close()

    async def fetch_data(self):
        """Fetch data from API."""
        # Simulated async HTTP request
        await asyncio.sleep(0.1)
        return {"status": "ok"}

    async def process_data(self, data):
        """Process fetched data."""
        print(f"Processed: {data}")

    async def create_session(self):
        """Create HTTP session."""
        # In real code, use aiohttp or similar
        return object()

    async def lifecycle(self, event_type, **data):
        """Async lifecycle handler."""
        print(f"Async event: {event_type}")

from spoc.workers import set_uvloop_if_available

# Enable uvloop for all async operations
set_uvloop_if_available()

# Now create async workers - they'll use uvloop automatically
worker = AsyncAPIWorker(name="FastWorker")
worker.start()
