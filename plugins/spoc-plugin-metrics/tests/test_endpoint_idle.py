"""The endpoint never polls: idle, it sleeps until a scrape or its close, so a server's stop closes it at once."""

from __future__ import annotations

import threading
import time
import urllib.request

from prometheus_client import CollectorRegistry

from spoc_metrics._endpoint import Endpoint


def voluntary_switches(thread: threading.Thread) -> int:
    """How many times `thread` has gone to sleep and woken up again, from the kernel's count."""
    with open(f"/proc/self/task/{thread.native_id}/status") as status:
        for line in status:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches line")


def settled(thread: threading.Thread) -> int:
    """`thread`'s switch count once it has gone a tenth of a second without one: done with the request it served
    (on a loaded machine its last steps after the response, each a wait for the GIL, take a while)."""
    count = voluntary_switches(thread)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = voluntary_switches(thread)
        if now == count:
            return now
        count = now
    raise AssertionError("the endpoint's thread never settled")


def test_an_idle_endpoint_never_wakes_up_and_closes_at_once() -> None:
    endpoint = Endpoint(CollectorRegistry(), "127.0.0.1", 0)
    endpoint.serve()
    thread = endpoint._thread
    assert thread is not None
    try:
        host, port = endpoint.address
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:  # it serves
            assert response.status == 200
        before = settled(thread)
        time.sleep(1.0)  # the window measured, not a wait for something: a poll every 0.1 s would wake it 10 times
        assert voluntary_switches(thread) - before <= 1
    finally:
        endpoint.close()  # also when the test failed: a thread left running spoils the tests after it
    assert not thread.is_alive()
