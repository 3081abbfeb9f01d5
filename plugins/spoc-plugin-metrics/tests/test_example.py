"""The repository's examples/metrics_demo.py runs as written: every worker's jobs are scraped, then Ctrl+C stops it."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from spoc.testing import App

ROOT = Path(__file__).resolve().parents[3]  # the spoc repository
EXAMPLE = ROOT / "examples" / "metrics_demo.py"


@pytest.mark.timeout(90)
def test_the_metrics_demo_runs(spoc_app: type[App]) -> None:
    demo = spoc_app(script=EXAMPLE, cwd=EXAMPLE.parent)  # SPOC_METRICS_PORT=0 (conftest): a free port
    demo.expect(r"Press Ctrl\+C to stop\.")
    for kind, worker in (("resize", "resizer"), ("email", "mailer"), ("push", "notifier")):
        assert re.search(rf'demo_jobs_processed_total{{kind="{kind}",worker="{worker}"}} [1-9]', demo.stdout)
    assert 'spoc_worker_up{worker="resizer"} 1.0' in demo.stdout
    assert re.search(r"metrics: serving http://127\.0\.0\.1:\d+/metrics", demo.stderr)
    demo.signal_group(signal.SIGINT)
    assert demo.wait() == 0
    assert "Shutdown clean (reason: signal)" in demo.stdout
    assert "Traceback" not in demo.stderr
