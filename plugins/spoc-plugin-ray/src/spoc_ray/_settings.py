"""Where a worker's actor runs: read from its ``plugin_options`` first, then its attribute, then the default.

Bad values are refused by the plugin's ``worker_check`` hook before any worker
starts, with a message that names the worker, the setting and its value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULTS", "Placement", "placement_of"]

DEFAULTS: dict[str, Any] = {
    "ray_num_cpus": None,
    "ray_num_gpus": None,
    "ray_resources": None,
    "ray_memory": None,
    "ray_node": None,
    "ray_node_soft": False,
}
"""Every setting of a Ray worker, with its default (None: Ray's own)."""


@dataclass(frozen=True)
class Placement:
    """One worker's settings, resolved: what its actor asks the cluster for, and the node it is pinned to."""

    num_cpus: float | None = None
    num_gpus: float | None = None
    resources: dict[str, float] | None = None
    memory: int | None = None
    node: str | None = None
    """A node id, or a node label as ``key=value``."""
    node_soft: bool = False

    def actor_options(self) -> dict[str, Any]:
        """The options of the worker's actor (``ActorClass.options(**...)``); imports ray."""
        options: dict[str, Any] = {}
        for name in ("num_cpus", "num_gpus", "resources", "memory"):
            value = getattr(self, name)
            if value is not None:
                options[name] = value
        if self.node is not None:
            from ray.util import scheduling_strategies as strategies

            key, is_label, value = self.node.partition("=")
            if is_label:  # a node label: "zone=eu-1"
                wanted = {key: strategies.In(value)}
                strategy: Any = strategies.NodeLabelSchedulingStrategy(
                    hard={} if self.node_soft else wanted, soft=wanted if self.node_soft else None
                )
            else:  # a node id
                strategy = strategies.NodeAffinitySchedulingStrategy(self.node, soft=self.node_soft)
            options["scheduling_strategy"] = strategy
        return options


def _lookup(worker: Any, setting: str) -> Any:
    options = worker.plugin_options
    return options[setting] if setting in options else getattr(worker, setting, DEFAULTS[setting])


def _amount(owner: str, setting: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: {setting}={value!r} must be a number >= 0 (or None for Ray's default)")
    return float(value)


def placement_of(worker: Any) -> Placement:
    """`worker`'s placement; raises ValueError naming the worker, the setting and its value when one is bad."""
    owner = f"worker {worker.name!r} ({type(worker).__name__})"
    resources = _lookup(worker, "ray_resources")
    if resources is not None:
        if not isinstance(resources, dict) or not all(isinstance(k, str) and k for k in resources):
            raise ValueError(
                f"{owner}: ray_resources={resources!r} must be a dict of custom resource names to amounts, "
                f"e.g. {{'accelerator': 1}}"
            )
        resources = {k: _amount(owner, f"ray_resources[{k!r}]", v) for k, v in resources.items()}
    memory = _lookup(worker, "ray_memory")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int) or memory <= 0):
        raise ValueError(f"{owner}: ray_memory={memory!r} must be a number of bytes > 0 (or None)")
    node = _lookup(worker, "ray_node")
    if node is not None and (not isinstance(node, str) or not node.strip("=") or node.count("=") > 1):
        raise ValueError(
            f"{owner}: ray_node={node!r} must be a Ray node id (hex, as ray.nodes() lists it), a node label as "
            f"'key=value', or None"
        )
    soft = _lookup(worker, "ray_node_soft")
    if not isinstance(soft, bool):
        raise ValueError(f"{owner}: ray_node_soft={soft!r} must be True or False")
    return Placement(
        num_cpus=_amount(owner, "ray_num_cpus", _lookup(worker, "ray_num_cpus")),
        num_gpus=_amount(owner, "ray_num_gpus", _lookup(worker, "ray_num_gpus")),
        resources=resources,
        memory=memory,
        node=node,
        node_soft=soft,
    )
