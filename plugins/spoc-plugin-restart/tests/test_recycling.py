"""Recycling (issue 32): a worker past its ``max_age``, ``max_jobs`` or ``max_memory`` is replaced gracefully
(teardown runs, a fresh instance starts), never as a failure, one replica of a worker at a time; bad settings
are refused at start, naming the worker, the setting and the value. Under a real ``spoc run`` where it counts."""

from __future__ import annotations

import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spoc import AbstractWorker, ProcessWorker, ThreadWorker
from spoc.testing import App, HookRecorder, ServerFactory
from spoc_restart import Supervisor

pytestmark = pytest.mark.timeout(90)

APP = Path(__file__).resolve().parent / "apps" / "recycled.py"
LINE = re.compile(r"^(READY|TEARDOWN) (\S+) pid=(\d+)(?: restarts=(\d+))? at=([\d.]+)$")


def run(spoc_app: Callable[..., App], mode: str) -> App:
    return spoc_app(command=[sys.executable, "-m", "spoc", "run", f"{APP}:server"], env={"MODE": mode})


def lines_of(app: App) -> list[tuple[str, str, int, float]]:
    """(READY or TEARDOWN, worker, pid, when) for each line the app's workers printed, in the order of when."""
    found = [LINE.match(line) for line in app.stdout.splitlines()]
    return sorted(((m[1], m[2], int(m[3]), float(m[5])) for m in found if m is not None), key=lambda line: line[3])


def ended_well(app: App) -> float:
    """SIGTERM ends it cleanly: recycles are no failure, so the supervisor (max_restarts=1) never gave up. Returns
    when the SIGTERM was sent (the workers' clock: CLOCK_MONOTONIC is the machine's)."""
    sent = time.monotonic()
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "gives up" not in app.stderr and "restarting it" not in app.stderr
    assert all(m[1] == "0" for m in re.finditer(r"restarts=(\d+)", app.stdout)), "a recycle is not a restart"
    return sent


def test_max_age_replaces_a_process_and_a_thread_worker_about_every_second(spoc_app: Callable[..., App]) -> None:
    app = run(spoc_app, "age")
    for name in ("proc", "thread"):
        app.expect(rf"^READY {name} ", count=4)
    ended_well(app)
    for name in ("proc", "thread"):
        mine = [line for line in lines_of(app) if line[1] == name]
        kinds = [kind for kind, *_ in mine]
        assert kinds[: 2 * 4] == ["READY", "TEARDOWN"] * 4, kinds  # each instance's teardown ran before the next
        lives = [teardown[3] - ready[3] for ready, teardown in zip(mine[0:-1:2], mine[1::2], strict=False)]
        recycled = lives[:3]  # the fourth instance's life ended at the SIGTERM
        assert all(0.85 <= life <= 2.5 for life in recycled), lives  # max_age=1, within recycle_jitter=0.1
        app_lines = re.findall(rf"worker '{name}' is recycled: it has run ([\d.]+)s \(max_age=1;", app.stderr)
        assert len(app_lines) >= 3
    pids = [pid for kind, name, pid, _ in lines_of(app) if kind == "READY" and name == "proc"]
    assert len(set(pids)) == len(pids), "each recycle of a process worker starts a new process"


def test_max_memory_replaces_a_growing_process_before_150mib(spoc_app: Callable[..., App]) -> None:
    app = run(spoc_app, "memory")
    (recycled,) = app.expect(
        r"worker 'grow' is recycled: its process uses ([\d.]+)MiB of memory \(max_memory=100.0MiB", stream="stderr"
    )
    app.expect(r"^READY grow ", count=2)
    ended_well(app)
    assert float(recycled[1]) < 150
    first_pid = lines_of(app)[0][2]
    teardown = next(
        i for i, line in enumerate(app.stdout.splitlines()) if line.startswith(f"TEARDOWN grow pid={first_pid}")
    )
    sizes = [float(line.split()[1]) for line in app.stdout.splitlines()[:teardown] if line.startswith("RSS ")]
    assert sizes and max(sizes) < 150, sizes


def test_replicas_are_recycled_one_at_a_time(spoc_app: Callable[..., App]) -> None:
    app = run(spoc_app, "replicas")
    app.expect(r"starting worker 'proc-\d' afresh \(recycle\)", stream="stderr", count=7)
    sigterm = ended_well(app)
    events = [event for event in lines_of(app) if event[3] < sigterm]
    first_all_up = next(i for i in range(len(events)) if len({e[1] for e in events[: i + 1] if e[0] == "READY"}) == 3)
    up, fewest = {"proc-1", "proc-2", "proc-3"}, 3
    for kind, name, _pid, _at in events[first_all_up + 1 :]:  # from all three up until the SIGTERM
        (up.add if kind == "READY" else up.discard)(name)
        fewest = min(fewest, len(up))
    assert fewest >= 2, "\n".join(map(str, events))


class Ages(ThreadWorker):
    max_age = 0.2

    def main(self) -> None:
        while not self.wait(60):
            pass


def test_recycles_never_make_the_supervisor_give_up(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    supervisor = Supervisor(max_restarts=1, within=60.0, start_within=0.1, give_up_after=0.1)
    server = spoc_server(Ages("ages"), plugins=[supervisor])
    server.start()
    spoc_hooks.wait_for("worker_started", worker=lambda w: len(spoc_hooks.of("worker_recycling")) >= 5)
    status = supervisor.status(server)["ages"]
    assert status.recycles >= 4 and status.restarts == 0
    assert status.last_recycle is not None and "it has run" in status.last_recycle
    assert [call["reason"] for call in spoc_hooks.of("worker_recycling")][:5] == ["age"] * 5
    assert not spoc_hooks.of("server_stopping")


class Counts(AbstractWorker):
    """Does a job every 10 ms and counts it; its teardown tells the test how many it did."""

    max_jobs = 20
    recycle_jitter = 0.0
    counted: Any = None

    def main(self) -> None:
        while not self.wait(0.01):
            self.job_done()

    def teardown(self) -> None:
        self.send_record("test.jobs", jobs=self.jobs_done)


class CountsThread(Counts, ThreadWorker):
    pass


class CountsProcess(Counts, ProcessWorker):
    pass


@pytest.mark.parametrize("kind", [CountsThread, CountsProcess])
def test_max_jobs_recycles_after_so_many_jobs(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, kind: type[Counts]
) -> None:
    server = spoc_server(kind("counts"), plugins=[Supervisor()])
    server.start()
    spoc_hooks.wait_for(
        "worker_started", worker=lambda w: w.name == "counts" and len(spoc_hooks.of("worker_recycling")) >= 2
    )
    done = [call["data"]["jobs"] for call in spoc_hooks.of("worker_record", topic="test.jobs")]
    assert done and all(20 <= jobs <= 25 for jobs in done), done  # max_jobs=20, and the few of a stop in flight
    assert {call["reason"] for call in spoc_hooks.of("worker_recycling")} == {"jobs"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_age": 0}, "max_age=0 must be a number of seconds > 0, or None for no limit"),
        ({"max_age": -1}, "max_age=-1 must be a number of seconds > 0"),
        ({"max_jobs": 0}, "max_jobs=0 must be a whole number >= 1, or None for no limit"),
        ({"max_jobs": 2.5}, "max_jobs=2.5 must be a whole number >= 1"),
        ({"max_memory": "12XB"}, "max_memory='12XB' must be a size in bytes > 0: an int, or a string such as"),
        ({"max_memory": 0}, "max_memory=0 must be a size in bytes > 0"),
        ({"max_memory": -5}, "max_memory=-5 must be a size in bytes > 0"),
        ({"recycle_jitter": 0.6}, "recycle_jitter=0.6 must be a number >= 0 and <= 0.5"),
        ({"recycle_jitter": -0.1}, "recycle_jitter=-0.1 must be a number >= 0 and <= 0.5"),
    ],
)
def test_a_bad_recycling_setting_is_refused_at_start_naming_it(
    spoc_server: ServerFactory, options: dict[str, Any], message: str
) -> None:
    bad = CountsProcess("bad", plugin_options=options)
    server = spoc_server(bad, plugins=[Supervisor()])
    with pytest.raises(ValueError, match=re.escape(f"worker 'bad' (CountsProcess): {message}")):
        server.start()
    assert not bad.started


def test_max_memory_on_a_thread_worker_is_refused_saying_why(spoc_server: ServerFactory) -> None:
    bad = CountsThread("bad", plugin_options={"max_memory": "512MiB"})
    server = spoc_server(bad, plugins=[Supervisor()])
    with pytest.raises(
        ValueError,
        match=r"worker 'bad' \(CountsThread\): max_memory='512MiB' cannot apply to a "
        r"thread worker: it shares the server's memory.*make it a ProcessWorker, or remove max_memory",
    ):
        server.start()


def test_a_supervisors_default_max_memory_holds_process_workers_only() -> None:
    supervisor = Supervisor(max_memory="1GiB", max_age=3600, max_jobs=1000)
    assert supervisor.settings(CountsThread("t")).max_memory is None
    assert supervisor.settings(CountsProcess("p")).max_memory == 2**30
    assert supervisor.settings(CountsProcess("p")).max_age == 3600
    with pytest.raises(ValueError, match="Supervisor: max_memory='lots' must be a size in bytes"):
        Supervisor(max_memory="lots")
