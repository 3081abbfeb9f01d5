"""A worker on the ``ray`` backend lives in an actor as in a ProcessWorker's child: lifecycle, records, errors,
stop, and the deadline's kill, reported through the server's hooks."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from ray_workers import Anywhere, Fails, Far, FarAsync, HoldsAGenerator, IgnoresStop
from spoc import WorkerStartError
from spoc.testing import HookRecorder, ServerFactory
from spoc_ray import Ray

pytestmark = pytest.mark.usefixtures("local_ray")


def kinds(spoc_hooks: HookRecorder, worker: str) -> list[str]:
    return [
        c["event"].kind if c["event"].kind != "record" else c["event"].data["topic"]
        for c in spoc_hooks.of("worker_event", worker=worker)
    ]


def test_a_ray_worker_lives_in_its_actor_and_reports_in_order(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    server = spoc_server(Far("far"), plugins=[Ray()], name="ray-test")
    server.start()
    where = spoc_hooks.wait_for("worker_record", worker="far", topic="test.where")["data"]
    assert where["pid"] != os.getpid() and where["current"] == "far"
    started = spoc_hooks.wait_for("worker_started", worker="far")
    assert started["event"].pid == where["pid"]
    spoc_hooks.wait_for("worker_record", worker="far", topic="test.count", data={"i": 2})
    server.stop()
    assert server.join_all(30) == []
    (worker,) = server.workers
    assert worker.pid == where["pid"]
    assert kinds(spoc_hooks, "far") == [
        "test.where",
        "startup",
        "test.count",
        "test.count",
        "test.count",
        "stopping",
        "stopping",  # the server's word, then the actor's (as a process worker's child tells it too)
        "test.teardown",
        "shutdown",
        "exit",
    ]
    exit_info: Any = spoc_hooks.wait_for("worker_exited", worker="far")["exit_info"]
    assert (exit_info.outcome, exit_info.exitcode, exit_info.reason) == ("stopped", 0, None)


def test_plugin_options_backend_puts_one_worker_of_a_process_class_on_ray(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    on_ray = Anywhere("on-ray", plugin_options={"backend": "ray", "ray_num_cpus": 1})
    child = Anywhere("child", start_method="spawn")  # this process runs Ray's threads: not forked
    server = spoc_server(on_ray, child, plugins=[Ray()])
    server.start()
    actor = spoc_hooks.wait_for("worker_record", worker="on-ray", topic="test.where")["data"]
    spawned = spoc_hooks.wait_for("worker_record", worker="child", topic="test.where")["data"]
    assert actor["program"].endswith("default_worker.py")  # a Ray worker process
    assert not spawned["program"].endswith("default_worker.py")
    server.stop()
    assert server.join_all(30) == []
    assert (on_ray.pid, child.pid) == (actor["pid"], spawned["pid"])


def test_an_async_worker_runs_on_its_own_loop_in_the_actor(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    server = spoc_server(FarAsync("far-async"), plugins=[Ray()])
    server.start()
    spoc_hooks.wait_for("worker_record", worker="far-async", topic="test.async")
    server.stop()  # its sleep(3600) returns at once
    assert server.join_all(30) == []
    assert spoc_hooks.wait_for("worker_exited", worker="far-async")["exit_info"].outcome == "stopped"


def test_a_failure_in_the_actor_reaches_the_server_with_its_traceback(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    server = spoc_server(Fails("failing"), plugins=[Ray()], allow_errors=True)
    server.start()
    error = spoc_hooks.wait_for("worker_error", worker="failing")["error"]
    assert (error.type_name, error.phase, error.message) == ("LookupError", "main", "no such shard: 7")
    assert 'raise LookupError("no such shard: 7")' in error.traceback
    exit_info = spoc_hooks.wait_for("worker_exited", worker="failing")["exit_info"]
    assert (exit_info.outcome, exit_info.exitcode) == ("failed", 1)
    assert spoc_hooks.of("worker_record", worker="failing", topic="test.teardown")  # teardown still ran


def test_past_the_deadline_the_actor_is_killed_and_reported_forced(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    server = spoc_server(IgnoresStop("stuck"), plugins=[Ray()], allow_errors=True)
    server.start()
    spoc_hooks.wait_for("worker_record", worker="stuck", topic="test.stuck")
    server.stop()
    assert [w.name for w in server.join_all(1.0)] == ["stuck"]  # missed the deadline: killed
    exit_info: Any = spoc_hooks.wait_for("worker_exited", worker="stuck")["exit_info"]
    assert (exit_info.outcome, exit_info.forced) == ("killed", True)
    assert exit_info.reason.startswith("Ray: ") and "ray.kill" in exit_info.reason


def test_a_worker_that_cannot_be_sent_to_ray_fails_at_start_naming_the_attribute(
    spoc_server: ServerFactory,
) -> None:
    server = spoc_server(HoldsAGenerator("holder"), plugins=[Ray()])
    with pytest.raises(WorkerStartError) as raised:
        server.start()
    message = str(raised.value)
    assert "HoldsAGenerator 'holder' cannot be sent to its Ray actor: its attribute 'batches'" in message
    assert "Create such objects in setup(), which runs in the actor." in message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ray_num_cpus": -1}, "worker 'bad' (Far): ray_num_cpus=-1 must be a number >= 0"),
        ({"ray_resources": ["gpu"]}, "worker 'bad' (Far): ray_resources=['gpu'] must be a dict"),
        ({"ray_node_soft": "yes"}, "worker 'bad' (Far): ray_node_soft='yes' must be True or False"),
        ({"ray_node": "a=b=c"}, "worker 'bad' (Far): ray_node='a=b=c' must be a Ray node id"),
    ],
)
def test_bad_settings_are_refused_before_any_worker_starts(
    spoc_server: ServerFactory, options: dict[str, object], message: str
) -> None:
    server = spoc_server(Far("bad", plugin_options=options), plugins=[Ray()])
    with pytest.raises(ValueError) as raised:
        server.start()
    assert message in str(raised.value)


def test_once_the_server_has_stopped_none_of_its_actors_is_left_in_the_cluster(
    local_ray: Any, spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    workers = [Far(f"holder-{i}", plugin_options={"ray_num_cpus": 2}) for i in range(2)]  # all 4 CPUs of the Ray
    server = spoc_server(*workers, plugins=[Ray()])
    server.start()
    for worker in workers:
        spoc_hooks.wait_for("worker_started", worker=worker.name)
    server.stop()
    assert server.join_all(30) == []
    # A live actor holds its CPUs: they all come back only when both actors are gone (Ray reports it shortly after).
    deadline = time.monotonic() + 30
    while local_ray.available_resources().get("CPU", 0) < 4 and time.monotonic() < deadline:
        threading.Event().wait(0.05)
    assert local_ray.available_resources().get("CPU", 0) == 4


def test_replicas_of_a_ray_worker_are_separate_actors(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    """``replicas=2`` on the ray backend: two actors, each the replica of its own name (issue 30)."""
    server = spoc_server(Far("far", replicas=2), plugins=[Ray()], name="ray-replicas")
    server.start()
    where = {
        name: spoc_hooks.wait_for("worker_record", worker=name, topic="test.where")["data"]
        for name in ("far-1", "far-2")
    }
    assert [where[name]["current"] for name in ("far-1", "far-2")] == ["far-1", "far-2"]
    assert where["far-1"]["pid"] != where["far-2"]["pid"] and os.getpid() not in {w["pid"] for w in where.values()}
    assert [(w.name, w.replica) for w in server.workers] == [("far-1", 1), ("far-2", 2)]
    server.stop()
    assert server.join_all(30) == []
    assert [w.exit_info.outcome for w in server.workers if w.exit_info is not None] == ["stopped", "stopped"]
