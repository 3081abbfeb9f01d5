"""Every record about a worker carries its ``worker`` field, also those that name it only in their text (issue 35,
point 5): its stack, a deadline it missed, a forced end; every record of the server's own its ``server`` field
(issue 37, point 3); and an error before anything started is in the stream."""

from __future__ import annotations

import re
import signal

import pytest

from runs import records, spoc_run
from spoc.testing import App

pytestmark = pytest.mark.timeout(120)


def test_every_record_that_names_a_worker_carries_it(spoc_app: type[App], spoc_start_method: str) -> None:
    program = spoc_run(
        spoc_app,
        "stuck",
        "--log-format",
        "json",
        "--shutdown-timeout",
        "1",
        env={"SPOC_TEST_START_METHOD": spoc_start_method},
    )
    program.expect(r'"event":"stuck","worker":"stuck-process"')
    program.expect(r'"event":"stuck","worker":"stuck-thread"')
    program.signal(signal.SIGUSR1)
    program.expect(r"stack of worker 'stuck-process'")
    program.signal(signal.SIGTERM)
    assert program.wait() == 1
    stream = records(program.stdout)
    named = [(r, re.search(r"worker '([\w-]+)'", r["event"])) for r in stream if r.get("logger", "").startswith("spoc")]
    about = [(r, m.group(1)) for r, m in named if m and not r["event"].startswith("server ")]
    said = " | ".join(r["event"].split("\n")[0] for r, _ in about)
    for needle in ("stack of worker 'stuck-process'", "stack of worker 'stuck-thread'", "did not stop within"):
        assert needle in said, said
    assert "SIGKILL" in said or "SIGTERM" in said, said
    for record, worker in about:
        assert record.get("worker") == worker, record
    # Every record of the server's own carries its server (issue 37, point 3): its start, the signals.
    own = [r for r in stream if r.get("logger") == "spoc" and re.match(r"server 'logging-app'", r["event"])]
    events = " | ".join(r["event"].split(":")[0] for r in own)
    for needle in ("server 'logging-app' starting", "received SIGUSR1", "received SIGTERM"):
        assert needle in events, events
    for record in own:
        assert record.get("server") == "logging-app", record


def test_an_error_before_anything_started_is_in_the_stream(spoc_app: type[App]) -> None:
    pytest.importorskip("spoc_metrics", reason="spoc-plugin-metrics refuses the port: installed in nox -s together")
    program = spoc_run(spoc_app, "order", "--log-format", "json", env={"SPOC_METRICS_PORT": "not-a-port"})
    assert program.wait() == 2
    (record,) = records(program.stdout)
    assert record["level"] == "error" and record["server"] == "logging-app" and record["logger"] == "spoc"
    assert record["event"].startswith("server 'logging-app' could not start: SPOC_METRICS_PORT must be a port")
    assert "could not start" in program.stderr  # spoc run says it on stderr as well


def test_each_replica_s_lines_and_events_carry_its_own_name(spoc_app: type[App], spoc_start_method: str) -> None:
    """Replicas are workers (issue 30): ``worker`` is the replica's own name on its output and its events."""
    program = spoc_run(spoc_app, "replicas", "--log-format", "json", env={"SPOC_TEST_START_METHOD": spoc_start_method})
    for replica in (1, 2, 3):
        program.expect(rf'"event":"I am named-{replica}, replica {replica}","worker":"named-{replica}"')
    program.signal(signal.SIGTERM)
    assert program.wait() == 0, program.stdout
    stream = records(program.stdout)
    for replica in (1, 2, 3):
        mine = [r for r in stream if f"named-{replica}" in r["event"]]
        assert mine and all(r.get("worker") == f"named-{replica}" for r in mine), mine
