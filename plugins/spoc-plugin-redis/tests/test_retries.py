"""retry_backoff, retry_on and dead_on: when a failed job is tried again, and which errors are never retried."""

from __future__ import annotations

import itertools
import re

import pytest
import redis

from spoc import Server
from spoc.testing import ServerFactory
from spoc_redis import plugin
from stream_workers import Flaky, dead_letters

WAIT = 30  # seconds any one job may take, on a loaded machine
SLACK = 1.0  # seconds a retry may come late on a loaded machine (never early)


def tries(client: redis.Redis, count: int) -> list[tuple[str, int, float]]:
    """The first `count` tries as the worker pushes them: (n, delivery, time)."""
    found = []
    for _ in range(count):
        item = client.blpop(["tries"], timeout=WAIT)
        assert item is not None, f"only {len(found)} of {count} tries within {WAIT}s: {found}"
        n, delivery, at = item[1].split()
        found.append((n, int(delivery), float(at)))
    return found


def test_retries_wait_as_retry_backoff_says_doubling_up_to_its_most(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client.xadd("jobs", {"n": "1", "raise": "ValueError"})
    options = {"redis_url": redis_url, "retry_backoff": (0.2, 0.3), "max_deliveries": 4}
    spoc_server(Flaky("flaky", plugin_options=options)).start()
    found = tries(client, 4)
    assert [delivery for _, delivery, _ in found] == [1, 2, 3, 4]
    gaps = [later[2] - earlier[2] for earlier, later in itertools.pairwise(found)]
    for gap, wait in zip(gaps, [0.2, 0.3, 0.3], strict=True):  # 0.2, then 0.4 and 0.8 held to 0.3
        assert wait - 0.01 <= gap <= wait + SLACK, gaps
    (dead,) = dead_letters(client, 1)
    assert dead["spoc_deliveries"] == "4" and dead["spoc_error_type"] == "ValueError"
    assert "failed (delivery 1 of 4); it will be retried in 0.2s" in caplog.text
    assert "failed (delivery 3 of 4); it will be retried in 0.3s" in caplog.text
    assert "failed (delivery 4 of 4); it moves to 'jobs:dead'" in caplog.text


def test_retry_on_retries_only_the_errors_it_names(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client.xadd("jobs", {"n": "key", "raise": "KeyError"})
    client.xadd("jobs", {"n": "value", "raise": "ValueError"})
    options = {"redis_url": redis_url, "retry_on": (ValueError, TimeoutError), "retry_backoff": (0, 0)}
    spoc_server(Flaky("flaky", plugin_options={**options, "max_deliveries": 3})).start()
    dead = {fields["n"]: fields for fields in dead_letters(client, 2)}
    assert dead["key"]["spoc_deliveries"] == "1" and dead["key"]["spoc_error_type"] == "KeyError"
    assert dead["value"]["spoc_deliveries"] == "3"  # retried until max_deliveries
    assert "retry_on does not name KeyError: it moves to 'jobs:dead' at once" in caplog.text


def test_dead_on_dead_letters_at_once_and_wins_over_retry_on(
    redis_url: str, client: redis.Redis, spoc_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client.xadd("jobs", {"n": "denied", "raise": "PermissionError"})
    client.xadd("jobs", {"n": "value", "raise": "ValueError"})
    client.xadd("jobs", {"n": "fine"})
    options = {"redis_url": redis_url, "dead_on": PermissionError, "retry_on": OSError, "retry_backoff": (0, 0)}
    spoc_server(Flaky("flaky", plugin_options={**options, "max_deliveries": 2})).start()
    dead = {fields["n"]: fields for fields in dead_letters(client, 2)}
    assert dead["denied"]["spoc_deliveries"] == "1" and dead["denied"]["spoc_error_type"] == "PermissionError"
    assert dead["value"]["spoc_deliveries"] == "1"  # OSError is retried; ValueError is not
    assert client.blpop(["done"], timeout=WAIT) == ("done", "fine:1")
    assert "dead_on names PermissionError: it moves to 'jobs:dead' at once" in caplog.text


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("retry_backoff", 5, "retry_backoff=5 must be (first, most): two numbers of seconds with 0 <= first <= most"),
        ("retry_backoff", (2, 1), "retry_backoff=(2, 1) must be (first, most)"),
        ("retry_backoff", (-1, 1), "retry_backoff=(-1, 1) must be (first, most)"),
        ("retry_backoff", (0.5, "30"), "retry_backoff=(0.5, '30') must be (first, most)"),
        ("retry_on", "ValueError", "retry_on='ValueError' must be an exception class or a tuple of them"),
        ("retry_on", (ValueError, 3), "retry_on=(<class 'ValueError'>, 3) must be an exception class"),
        ("dead_on", None, "dead_on=None must be an exception class or a tuple of them, such as (ValueError, KeyError)"),
        ("dead_on", KeyboardInterrupt, "dead_on=<class 'KeyboardInterrupt'> must be an exception class"),
    ],
)
def test_a_bad_retry_setting_is_refused_before_any_worker_starts(
    option: str, value: object, message: str, redis_url: str
) -> None:
    server = Server("bad", plugins=[plugin])
    server.add_worker(Flaky("flaky", plugin_options={"redis_url": redis_url, option: value}))
    with pytest.raises(ValueError, match=re.escape(f"worker 'flaky' (Flaky): {message}")):
        server.start()
    assert not server.workers[0].started
