"""Shared fixtures, and the core's harness (the spoc repository's ``tests/``): programs run in their own session,
and no test may leave a process or a thread (a worker's, the plugin's writer) behind."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))

import pytest

from harness import app_factory, no_leftovers
from spoc._linux import set_child_subreaper

set_child_subreaper()

__all__ = ["app_factory", "no_leftovers", "start_method"]


@pytest.fixture(params=["fork", "forkserver", "spawn"])
def start_method(request: pytest.FixtureRequest) -> str:
    """The process workers' start method (the test app reads it from SPOC_TEST_START_METHOD)."""
    return str(request.param)
