"""one_for_one, one_for_all and rest_for_one (in the order workers were added)."""

from __future__ import annotations

import multiprocessing

import pytest

from restart_workers import FailsOnCue, FlakyThread, Steady, SteadyProcess
from spoc.testing import HookRecorder, ServerFactory
from spoc_restart import Backoff, Supervisor
from supervision import running

FAST = Backoff(initial=0.0, jitter=0.0)


def restarts(server: object) -> dict[str, int]:
    return {w.name: w.restarts for w in server.workers}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("one_for_one", {"a": 0, "b": 1, "c": 0}),
        ("one_for_all", {"a": 1, "b": 1, "c": 1}),
        ("rest_for_one", {"a": 0, "b": 1, "c": 1}),
    ],
)
def test_which_workers_restart_with_a_failed_one(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, strategy: str, expected: dict[str, int]
) -> None:
    cue = multiprocessing.Event()
    a, b, c = Steady("a"), FailsOnCue("b", cue), SteadyProcess("c")
    server = spoc_server(a, b, c, plugins=[Supervisor(strategy=strategy, backoff=FAST)], allow_errors=True)  # type: ignore[arg-type]
    server.start()
    for name in "abc":
        running(spoc_hooks, name, 0)
    cue.set()
    for name, count in expected.items():
        running(spoc_hooks, name, count)
    assert restarts(server) == expected
    for name, count in expected.items():
        outcomes = [call["exit_info"].outcome for call in spoc_hooks.of("worker_exited", worker=name)]
        assert outcomes == {"b": ["failed"]}.get(name, ["stopped"] * count)  # companions were stopped, not failed
    server.stop()
    assert server.join_all(10) == []


def test_one_for_all_restarts_only_after_every_companion_has_ended(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    supervisor = Supervisor(strategy="one_for_all", backoff=FAST)
    server = spoc_server(
        FlakyThread("flaky"), SteadyProcess("p1"), SteadyProcess("p2"), plugins=[supervisor], allow_errors=True
    )
    server.start()
    for name in ("flaky", "p1", "p2"):
        running(spoc_hooks, name, 1)
    names = spoc_hooks.names()
    last_exit = max(i for i, n in enumerate(names) if n == "worker_exited")
    first_restart = [i for i, n in enumerate(names) if n == "worker_started"][3]  # after the first three starts
    assert last_exit < first_restart


class Temporary(Steady):
    restart_policy = "never"


def test_a_never_companion_is_stopped_with_the_group_but_not_restarted(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    supervisor = Supervisor(strategy="one_for_all", backoff=FAST)
    cue = multiprocessing.Event()
    server = spoc_server(FailsOnCue("flaky", cue), Temporary("temporary"), plugins=[supervisor], allow_errors=True)
    server.start()
    running(spoc_hooks, "temporary", 0)
    running(spoc_hooks, "flaky", 0)
    cue.set()
    running(spoc_hooks, "flaky", 1)
    assert spoc_hooks.wait_for("worker_exited", worker="temporary")["exit_info"].outcome == "stopped"
    assert restarts(server) == {"flaky": 1, "temporary": 0}
