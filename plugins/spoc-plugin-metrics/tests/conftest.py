"""The installed plugin serves every server these tests make: on a free loopback port, never on 9464."""

from __future__ import annotations

import os

import pytest

os.environ["SPOC_METRICS_ADDR"] = "127.0.0.1"
os.environ["SPOC_METRICS_PORT"] = "0"  # inherited by the apps the tests run


@pytest.fixture(params=["fork", "forkserver", "spawn"])
def start_method(request: pytest.FixtureRequest) -> str:
    """Each process worker's start method: a child's counts reach the server under all of them."""
    return str(request.param)
