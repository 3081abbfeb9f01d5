"""ScheduledWorker: each tick runs once across every server that shares the Redis, however many run it."""

from __future__ import annotations

import collections
import itertools
import logging
import re
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis
from scheduled_workers import AsyncTicks, Fails, ProcessTicks, ThreadTicks

from conftest import RedisServer
from spoc import Server, ThreadWorker
from spoc.testing import App, HookRecorder, ServerFactory
from spoc_redis import ScheduledWorker, plugin
from spoc_redis._cron import Cron, CronError, Every

pytestmark = pytest.mark.timeout(120)

TICKER = Path(__file__).parent / "apps" / "ticker.py"


def pop(client: redis.Redis, keys: list[str], wait: float = 30) -> tuple[str, str]:
    """The first item pushed to one of `keys` (its key and value), within `wait` seconds: blocking pops of 2 s,
    under redis-py's socket timeout (5 s by default since redis-py 8)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        item = client.blpop(keys, timeout=2)
        if item is not None:
            return item[0], item[1]
    raise AssertionError(f"nothing was pushed to {keys} within {wait}s")


def ticks_until(client: redis.Redis, until: float) -> list[tuple[float, str]]:
    """The ticks pushed to ``ticks`` (``(at, who)``), popped as they come until one is at `until` or later."""
    got: list[tuple[float, str]] = []
    while not got or got[-1][0] < until:
        at, who = pop(client, ["ticks"])[1].split()
        got.append((float(at), who))
    return got


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/5 * * * *", "2026-12-06 19:33:20", ["2026-12-06 19:35", "2026-12-06 19:40"]),
        ("0 9 * * mon-fri", "2026-12-05 10:00", ["2026-12-07 09:00", "2026-12-08 09:00"]),  # a Saturday
        ("0 0 13 * 5", "2026-12-06 00:00", ["2026-12-11 00:00", "2026-12-13 00:00"]),  # Friday or the 13th
        ("0 0 29 2 *", "2026-03-01 00:00", ["2028-02-29 00:00", "2032-02-29 00:00"]),
        ("30 2 1 jan,jul *", "2026-12-06 00:00", ["2027-01-01 02:30", "2027-07-01 02:30"]),
        ("0 8 1 * sun", "2026-12-01 08:00", ["2026-12-06 08:00", "2026-12-13 08:00"]),  # the 1st or a Sunday
        ("59 23 31 12 *", "2026-12-31 23:59", ["2027-12-31 23:59", "2028-12-31 23:59"]),
    ],
)
def test_cron_ticks_at_the_minutes_it_matches(expression: str, after: str, expected: list[str]) -> None:
    cron, now, got = Cron.parse(expression), utc(after), []
    for _ in expected:
        now = cron.next_after(now)
        got.append(datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d %H:%M"))
    assert got == expected
    assert Every(300).next_after(utc("2026-12-06 19:33:20")) == utc("2026-12-06 19:35")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("*/5 * * *", "cron '*/5 * * *' has 4 field(s); it takes five: minute hour day-of-month month day-of-week"),
        ("0 25 * * *", "cron '0 25 * * *': the hour field's '25': 25 is out of 0-23"),
        ("*/0 * * * *", "cron '*/0 * * * *': the minute field's '*/0' has a step that is not a whole number > 0"),
        ("0 0 * foo *", "cron '0 0 * foo *': the month field's 'foo' is not a number, or a name such as 'jan'"),
        ("0 0 5-1 * *", "cron '0 0 5-1 * *': the day-of-month field's '5-1' is a range that runs backwards"),
        ("0 0 30 2 *", "cron '0 0 30 2 *' matches no date"),
    ],
)
def test_a_bad_cron_is_refused_at_start_naming_the_worker_and_the_field(
    expression: str, message: str, redis_url: str
) -> None:
    with pytest.raises(CronError, match=re.escape(message)):
        Cron.parse(expression)
    server = Server("bad", plugins=[plugin])
    server.add_worker(ThreadTicks("report", plugin_options={"redis_url": redis_url, "every": None, "cron": expression}))
    with pytest.raises(ValueError, match=re.escape(f"worker 'report' (ThreadTicks): {message}")):
        server.start()
    assert not server.workers[0].started


class NoTick(ScheduledWorker, ThreadWorker):
    every = 1


@pytest.mark.parametrize(
    ("worker", "error", "message"),
    [
        (ThreadTicks("report", plugin_options={"cron": "* * * * *"}), ValueError, "set every (seconds, e.g."),
        (ThreadTicks("report", plugin_options={"every": None}), ValueError, "or cron (e.g. cron = '*/5 * * * *'), one"),
        (ThreadTicks("report", plugin_options={"every": -1}), ValueError, "every=-1 must be a number of seconds > 0"),
        (ThreadTicks("report", plugin_options={"catch_up": "yes"}), ValueError, "catch_up='yes' must be True or"),
        (NoTick("report"), TypeError, "worker 'report' (NoTick) defines no tick(self, at)"),
    ],
)
def test_bad_settings_are_refused_at_start(worker: ScheduledWorker, error: type[Exception], message: str) -> None:
    server = Server("bad", plugins=[plugin])
    server.add_worker(worker)  # type: ignore[arg-type]
    with pytest.raises(error, match=re.escape(message)):
        server.start()


def test_thread_async_and_process_workers_share_a_schedule_each_tick_once(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    options = {"redis_url": redis_url}
    server = spoc_server(
        ThreadTicks("thread", plugin_options=options),
        AsyncTicks("async", plugin_options=options),
        ProcessTicks("process", plugin_options=options),
        plugins=[plugin],
    )
    server.start()
    began = time.time()
    got = ticks_until(client, began + 4)
    ats = [round(at, 1) for at, _ in got]
    assert len(ats) == len(set(ats)), f"a tick ran twice: {got}"
    window = [at for at in ats if began + 0.2 < at <= began + 4]
    assert len(window) >= 18, f"ticks lost: {sorted(window)}"  # every 0.2 s: 19 or 20 in the window


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_each_kind_of_worker_ticks_with_a_schedule_of_its_own(
    method: str, redis_url: str, client: redis.Redis, spoc_server: ServerFactory
) -> None:
    options = {"redis_url": redis_url}
    spoc_server(
        ThreadTicks("thread", plugin_options={**options, "schedule_key": "thread"}),
        AsyncTicks("async", plugin_options={**options, "schedule_key": "async"}),
        ProcessTicks("process", start_method=method, plugin_options={**options, "schedule_key": "process"}),
        plugins=[plugin],
    ).start()
    ticked: collections.Counter[str] = collections.Counter()
    while min(ticked[name] for name in ("thread", "async", "process")) < 2:
        ticked[pop(client, ["ticks"])[1].split()[1]] += 1


def test_a_failing_tick_is_logged_and_the_schedule_goes_on(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="spoc.redis")
    spoc_server(Fails("report", plugin_options={"redis_url": redis_url}), plugins=[plugin]).start()
    ticks_until(client, time.time() + 0.6)
    failed = [r for r in caplog.records if "its tick at" in r.getMessage()]
    assert failed and re.match(
        r"worker 'report': its tick at \S+\+00:00 raised; the schedule goes on", failed[0].msg % failed[0].args
    )
    assert failed[0].exc_info is not None and "the report failed" in str(failed[0].exc_info[1])


@pytest.mark.parametrize("catch_up", [True, False])
def test_a_tick_missed_while_no_server_ran_is_caught_up_once_when_asked(
    catch_up: bool,
    redis_url: str,
    client: redis.Redis,
    spoc_server: ServerFactory,
    spoc_hooks: HookRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="spoc.redis")
    now = time.time()
    client.set("spoc:{report}:last", repr(now - 600.0))  # the schedule last ran ten minutes ago
    options = {"redis_url": redis_url, "every": 60, "catch_up": catch_up, "schedule_key": "report"}
    server = spoc_server(
        ThreadTicks("first", plugin_options=options),
        ThreadTicks("second", plugin_options=options),  # starts at the same time: the catch-up runs once
        plugins=[plugin],
    )
    server.start()
    for name in ("first", "second"):
        spoc_hooks.wait_for("worker_started", worker=name)
    server.stop()  # each main() tries its catch-up first, stopped or not: join_all waits for both
    assert server.join_all(30) == []
    missed = (now // 60) * 60  # the last tick before the start
    ran = [float(item.split()[0]) for item in client.lrange("ticks", 0, -1)]
    assert ran == ([missed] if catch_up else [])  # the next tick is up to a minute away
    assert float(client.get("spoc:{report}:last") or 0) == (missed if catch_up else now - 600.0)
    said = [r.getMessage() for r in caplog.records if "missed while no server ran" in r.getMessage()]
    at = datetime.fromtimestamp(missed, timezone.utc).isoformat()
    if catch_up:
        assert len(said) == 1 and f"runs the tick at {at}, missed while no server ran schedule 'report'" in said[0]
    else:
        assert len(said) == 2, said  # each worker says why it does not run it
        assert f"the tick at {at} was missed while no server ran schedule 'report'; skipped" in said[0]
        assert "set catch_up = True to run it at start" in said[0]


def logged(caplog: pytest.LogCaptureFixture, text: str, wait: float = 30) -> list[str]:
    """The messages logged so far that contain `text`, once there is one (looked for every 10 ms)."""
    deadline = time.monotonic() + wait
    while not (found := [r.getMessage() for r in caplog.records if text in r.getMessage()]):
        assert time.monotonic() < deadline, f"nothing logged with {text!r} within {wait}s"
        time.sleep(0.01)
    return found


def test_a_redis_outage_skips_ticks_says_so_once_and_counts_them_when_it_answers(
    tmp_path: Path, spoc_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spoc.redis")
    away = RedisServer(tmp_path)
    try:
        away.stop()
        options = {"redis_url": away.url, "every": 0.2}
        spoc_server(ThreadTicks("report", plugin_options=options), plugins=[plugin]).start()
        logged(caplog, "skipped the tick at")
        away.start()
        (back,) = logged(caplog, "reaches Redis again")
        skipped = int(re.search(r"; (\d+) tick\(s\) were skipped meanwhile", back)[1])  # type: ignore[index]
        said = [r.getMessage() for r in caplog.records if "skipped the tick at" in r.getMessage()]
        assert len(said) == 1 and skipped >= 1, (said, back)
        assert f"Redis at {away.url} did not answer" in said[0] and "the ticks are skipped until it does" in said[0]
        ticks = redis.Redis.from_url(away.url, decode_responses=True)
        assert pop(ticks, ["ticks"])[1].endswith(" report")  # it ticks again
        ticks.close()
    finally:
        away.stop()


def test_three_hosts_tick_once_a_second_and_a_host_killed_mid_tick_loses_none_after(
    spoc_app: type[App], redis_url: str, client: redis.Redis
) -> None:
    hosts = {name: spoc_app(name, script=TICKER, env={"SPOC_REDIS_URL": redis_url}) for name in ("a", "b", "c")}
    for app in hosts.values():
        app.expect(r"READY")
    began = time.time()
    got = ticks_until(client, began + 10)
    in_ten = sorted(at for at, _ in got if began < at <= began + 10)
    assert 9 <= len(in_ten) <= 11 and len(in_ten) == len(set(in_ten)), got
    assert [b - a for a, b in itertools.pairwise(in_ten)] == [1.0] * (len(in_ten) - 1), in_ten  # none lost
    client.delete("began:a", "began:b", "began:c")
    _, began_tick = pop(client, ["began:a", "began:b", "began:c"])  # the host that begins the next tick
    killed_tick, host = began_tick.split()
    hosts[host].signal_group(signal.SIGKILL)  # in the middle of its tick
    assert hosts[host].wait() == -signal.SIGKILL
    killed_at = float(killed_tick)
    got += ticks_until(client, killed_at + 5)
    counts = collections.Counter(at for at, _ in got)
    assert max(counts.values()) == 1, f"a tick ran twice: {counts}"
    assert killed_at not in counts  # claimed by the killed host: not run again by another
    after = sorted(at for at in counts if at > killed_at)
    assert after[:5] == [killed_at + n for n in range(1, 6)], after  # none lost after it
    others = [name for name in hosts if name != host]
    for name in others:
        hosts[name].signal_group(signal.SIGTERM)
    for name in others:
        assert hosts[name].wait() == 0, hosts[name].stderr
