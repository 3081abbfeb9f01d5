"""The repository's examples/ray_workers.py runs as written: two actors report, Ctrl+C stops both cleanly."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from spoc.testing import App

ROOT = Path(__file__).resolve().parents[3]  # the spoc repository
EXAMPLE = ROOT / "examples" / "ray_workers.py"


@pytest.mark.timeout(120)
def test_the_example_runs(spoc_app: type[App], ray_env: dict[str, str]) -> None:
    demo = spoc_app(script=EXAMPLE, cwd=EXAMPLE.parent, env=ray_env)
    demo.expect(r"Press Ctrl\+C to stop\.")
    demo.expect(r"trainer: first step done", timeout=90)
    demo.signal_group(signal.SIGINT)
    assert demo.wait(60) == 0, demo.stderr[-4000:]
    said = ("trainer: checkpoint saved", "trainer: stopped", "watcher: stopped", "Shutdown clean (reason: signal)")
    for line in said:
        assert line in demo.stdout, demo.stdout
