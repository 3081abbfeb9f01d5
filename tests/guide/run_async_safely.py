# The user guide's example, copied verbatim from ../shared/spec/workers-guide.txt (lines 417-426).

from spoc.workers import run_async_safely
import asyncio

async def my_coroutine():
    """Example async function."""
    await asyncio.sleep(1)
    return "Done"

# Safely run coroutine (creates event loop if needed)
run_async_safely(my_coroutine())
