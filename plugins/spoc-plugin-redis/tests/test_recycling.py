"""A stream worker recycled after its ``max_jobs`` (issue 32, with spoc-plugin-restart) against a real
redis-server: each instance is replaced after 100 jobs (±10%, and the few it had read or was acknowledging when
its stop came), its teardown runs each time, and no job is lost or done twice."""

from __future__ import annotations

import collections
import re
import signal
import sys
from pathlib import Path

import pytest
import redis

from spoc.testing import App

APP = Path(__file__).parent / "apps" / "recycled.py"
JOBS = 1000

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("kind", ["process", "thread"])
def test_a_stream_worker_is_recycled_after_max_jobs_and_loses_no_job(
    spoc_app: type[App], redis_url: str, client: redis.Redis, tmp_path: Path, kind: str
) -> None:
    record = tmp_path / "record"
    app = spoc_app(
        command=[sys.executable, "-m", "spoc", "run", f"{APP}:server"],
        env={"SPOC_REDIS_URL": redis_url, "RECORD": str(record), "KIND": kind},
    )
    app.expect(r"worker 'resize' started", stream="stderr")
    pipe = client.pipeline(transaction=False)
    for n in range(JOBS):
        pipe.xadd("jobs", {"n": str(n), **({"last": "1"} if n == JOBS - 1 else {})})
    pipe.execute()
    app.expect(r"LAST JOB DONE")
    app.expect(r"starting worker 'resize' afresh \(recycle\)", stream="stderr", count=5)
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    lines = record.read_text().splitlines()
    teardowns = [line.split() for line in lines if line.startswith("TEARDOWN")]
    jobs = [line.split() for line in lines if not line.startswith("TEARDOWN")]
    done = collections.Counter(n for n, _ in jobs)
    assert len(done) == JOBS, f"{JOBS - len(done)} jobs lost"
    assert [n for n, times in done.items() if times > 1] == [], "jobs done twice"
    assert client.xpending("jobs", "resizers")["pending"] == 0
    per_instance = collections.Counter(who for _, who in jobs)
    limits = [
        int(m)
        for m in re.findall(
            r"is recycled: it has done \d+ jobs \(max_jobs=100; this instance's limit (\d+)", app.stderr
        )
    ]
    assert len(limits) >= 5 and all(90 <= limit <= 110 for limit in limits), limits
    recycled = teardowns[: len(limits)]  # the instances that were recycled, in order; the last ended at the SIGTERM
    for (_, who, counted), limit in zip(recycled, limits, strict=True):
        assert int(counted) == per_instance[who], "jobs_done counts the jobs done and acknowledged"
        assert limit <= per_instance[who] <= limit + 10 + 2, (who, per_instance[who], limit)  # + a batch read
    assert "restarting it" not in app.stderr and "gives up" not in app.stderr
