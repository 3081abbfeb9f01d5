"""Autoscaling a stream worker's replicas on its group's backlog (issue 30): a burst scales it up to its most,
idleness back down to its least, and every job is done once; bad settings are refused before anything starts."""

from __future__ import annotations

import collections
import re
import signal
import sys
from pathlib import Path

import pytest
import redis

from spoc import ProcessWorker, Server
from spoc.testing import App
from spoc_redis import Job, StreamWorker

APP = Path(__file__).parent / "apps" / "autoscaled.py"
JOBS = 5000

pytestmark = pytest.mark.timeout(120)


def test_a_burst_scales_up_to_the_most_and_idleness_back_to_the_least(
    spoc_app: type[App], redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    record = tmp_path / "record"
    app = spoc_app(
        command=[sys.executable, "-m", "spoc", "run", f"{APP}:server"],
        env={"SPOC_REDIS_URL": redis_url, "RECORD": str(record)},
    )
    app.expect(r"worker 'resize' started", stream="stderr")
    pipe = client.pipeline(transaction=False)
    for n in range(JOBS):
        pipe.xadd("jobs", {"n": str(n)})
    pipe.execute()
    for count in (2, 3, 4):
        app.expect(
            rf"autoscaling worker 'resize' up from {count - 1} to {count}: backlog \d+ on stream 'jobs'",
            stream="stderr",
        )
    app.expect(r"worker 'resize-4' started", stream="stderr")
    for count in (3, 2, 1):
        app.expect(
            rf"autoscaling worker 'resize' down from {count + 1} to {count}: backlog 0 on stream 'jobs' \(no backlog",
            stream="stderr",
        )
    app.expect(r"worker 'resize-2' ended \(stopped\)", stream="stderr")
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    lines = record.read_text().splitlines()
    done = collections.Counter(line.split()[0] for line in lines)
    assert len(done) == JOBS, f"{JOBS - len(done)} jobs lost"
    assert [n for n, times in done.items() if times > 1] == [], "jobs done twice"
    assert {line.split()[1] for line in lines} == {"resize", "resize-2", "resize-3", "resize-4"}
    assert "up from 4" not in app.stderr and not re.search(r"down from 1 to 0", app.stderr)
    assert client.xpending("jobs", "resizers")["pending"] == 0


class Bad(StreamWorker, ProcessWorker):
    stream = "jobs"
    group = "g"

    def handle(self, job: Job) -> None:
        pass


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"autoscale": (3, 2)}, "autoscale=(3, 2) must be (min, max): two whole numbers of replicas, 0 <= min <= max"),
        ({"autoscale": 4}, "autoscale=4 must be (min, max)"),
        ({"autoscale": (0, 0)}, "max >= 1"),
        ({"autoscale": (1, True)}, "autoscale=(1, True) must be"),
        ({"autoscale": (1, 2), "scale_interval": 0}, "scale_interval"),
        ({"autoscale": (1, 2), "scale_up_backlog": 0}, "scale_up_backlog"),
    ],
)
def test_bad_autoscale_settings_are_refused_before_anything_starts(options: dict[str, object], message: str) -> None:
    server = Server("bad", plugins=[])
    server.add_worker(Bad("bad", plugin_options=options))
    with pytest.raises(ValueError) as refused:
        server.start()
    assert message in str(refused.value) and "'bad'" in str(refused.value)
    assert [w.started for w in server.workers] == [False]
