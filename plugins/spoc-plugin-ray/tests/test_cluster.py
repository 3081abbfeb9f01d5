"""A two-node Ray cluster on this machine: a worker whose node is removed without grace is reported killed, with
what Ray said, and spoc-plugin-restart restarts it on the node that is left (Ray's own restarts stay off)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ray_workers import OnANode
from spoc.testing import HookRecorder, ServerFactory
from spoc_ray import Ray

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")
spoc_restart = pytest.importorskip("spoc_restart", reason="the restart test needs spoc-plugin-restart")

FAST_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 100,
    "health_check_timeout_ms": 100,
    "health_check_failure_threshold": 3,
}


@pytest.fixture(scope="module")
def two_nodes(ray_env: dict[str, str]) -> Iterator[tuple[Any, Any]]:
    """A head node and a second node (2 CPUs each), this process connected; shut down after the module."""
    cluster = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "include_dashboard": False, "_system_config": FAST_HEALTH_CHECKS},
    )
    try:
        second = cluster.add_node(num_cpus=2, labels={"spoc-test": "second"})
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            yield cluster, second
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()


def test_a_worker_pinned_by_a_node_label_runs_there(
    two_nodes: tuple[Any, Any], spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    _, second = two_nodes
    server = spoc_server(OnANode("labelled", plugin_options={"ray_node": "spoc-test=second"}), plugins=[Ray()])
    server.start()
    assert spoc_hooks.wait_for("worker_record", worker="labelled", topic="test.node")["data"]["node"] == second.node_id
    server.stop()
    assert server.join_all(30) == []


def test_a_worker_whose_node_dies_is_reported_killed_and_restarted_on_the_node_left(
    two_nodes: tuple[Any, Any], spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    cluster, second = two_nodes
    head = cluster.head_node.node_id
    worker = OnANode("pinned", plugin_options={"ray_node": second.node_id, "ray_node_soft": True})
    server = spoc_server(worker, plugins=[Ray(), spoc_restart.Supervisor()], allow_errors=True)
    server.start()
    first = spoc_hooks.wait_for("worker_record", worker="pinned", topic="test.node")["data"]
    assert first["node"] == second.node_id
    cluster.remove_node(second, allow_graceful=False)
    exit_info: Any = spoc_hooks.wait_for("worker_exited", worker="pinned", timeout=60)["exit_info"]
    assert exit_info.outcome == "killed" and not exit_info.forced
    assert exit_info.reason.startswith("Ray: ")
    restarted = spoc_hooks.wait_for(
        "worker_record", worker="pinned", topic="test.node", data={"node": head}, timeout=60
    )["data"]
    assert restarted["pid"] != first["pid"]
    (replacement,) = server.workers
    assert replacement.restarts == 1
    server.stop()
    assert server.join_all(30) == []
