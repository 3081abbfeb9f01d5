"""Shared fixtures (spoc.testing's kit): no test may leave a process or a thread (a worker's, the plugin's writer)
behind."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_leftovers(spoc_no_leftovers: None) -> None:
    """No test may leave a process or a thread running (spoc.testing's check)."""
