"""Shared fixtures: every test is checked for leftover processes and worker threads."""

from __future__ import annotations

import pytest

from harness import app_factory, no_leftovers
from spoc._linux import set_child_subreaper

set_child_subreaper()

__all__ = ["app_factory", "no_leftovers", "start_method"]  # the fixtures every test file gets

START_METHODS = ["fork", "forkserver", "spawn"]


@pytest.fixture(params=START_METHODS)
def start_method(request: pytest.FixtureRequest) -> str:
    return str(request.param)
