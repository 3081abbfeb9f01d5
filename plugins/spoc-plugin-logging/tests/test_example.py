"""The repository's examples/structured_logs.py runs as written: one JSON stream, the crash's tail, Ctrl+C stops."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from runs import records
from spoc.testing import App

ROOT = Path(__file__).resolve().parents[3]  # the spoc repository
EXAMPLE = ROOT / "examples" / "structured_logs.py"


@pytest.mark.timeout(90)
def test_the_example_runs(spoc_app: type[App]) -> None:
    demo = spoc_app(script=EXAMPLE, cwd=EXAMPLE.parent, env={"SPOC_LOG_FORMAT": "json"})
    demo.expect(r"Press Ctrl\+C to stop\.")
    demo.expect(r'"worker":"crasher".*"lifecycle":"exited"')
    demo.signal_group(signal.SIGINT)
    assert demo.wait(60) == 1, demo.stderr  # the crasher was killed
    stream = records(demo.stdout)
    (died,) = [r for r in stream if r.get("worker") == "crasher" and r.get("lifecycle") == "exited"]
    assert (died["outcome"], died["signal"]) == ("killed", "SIGKILL")
    assert died["tail"] == ["loading the model", "model loaded: 3 layers"]
    resized = [r for r in stream if r.get("logger") == "example" and r["event"] == "resized"]
    assert [(r["worker"], r["image"]) for r in resized] == [("resizer", 0), ("resizer", 1), ("resizer", 2)]
