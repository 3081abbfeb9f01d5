"""Shared fixtures, and the core's harness (the spoc repository's ``tests/``): programs run in their own session,
and no test may leave a process or a thread (a worker's, the endpoint's) behind.

The installed plugin serves every server these tests make: on a free loopback port, never on 9464.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["SPOC_METRICS_ADDR"] = "127.0.0.1"
os.environ["SPOC_METRICS_PORT"] = "0"  # inherited by the programs the tests run

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))

from harness import app_factory, no_leftovers
from spoc._linux import set_child_subreaper

set_child_subreaper()

__all__ = ["app_factory", "no_leftovers", "start_method"]


@pytest.fixture(params=["fork", "forkserver", "spawn"])
def start_method(request: pytest.FixtureRequest) -> str:
    """Each process worker's start method: a child's counts reach the server under all of them."""
    return str(request.param)
