"""Shared fixtures (spoc.testing's kit): no test may leave a process or a thread (a worker's, the endpoint's)
behind.

The installed plugin serves every server these tests make: on a free loopback port, never on 9464.
"""

from __future__ import annotations

import os

import pytest

os.environ["SPOC_METRICS_ADDR"] = "127.0.0.1"
os.environ["SPOC_METRICS_PORT"] = "0"  # inherited by the programs the tests run


@pytest.fixture(autouse=True)
def _no_leftovers(spoc_no_leftovers: None) -> None:
    """No test may leave a process or a thread running (spoc.testing's check)."""
