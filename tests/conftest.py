"""Shared fixtures: every test is checked for leftover processes and worker threads (spoc.testing's kit)."""

from __future__ import annotations

from harness import app_factory, no_leftovers

__all__ = ["app_factory", "no_leftovers"]  # the fixtures every test file gets, besides spoc.testing's
