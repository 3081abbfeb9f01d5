"""Where a worker's actor runs, read with `spoc.settings.read`: its ``plugin_options`` first, then its
attribute, then the default.

Bad values are refused by the plugin's ``worker_check`` hook before any worker
starts, with a message that names the worker, the setting and its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spoc import settings

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


def _read(worker: Any, setting: str) -> Any:
    return settings.read(worker, setting, DEFAULTS[setting])


def _amount(worker: Any, setting: str, value: object) -> float | None:
    return settings.number(worker, setting, value, none="for Ray's default")


def placement_of(worker: Any) -> Placement:
    """`worker`'s placement; raises ValueError naming the worker, the setting and its value when one is bad."""
    owner = settings.owner(worker)
    resources = _read(worker, "ray_resources")
    if resources is not None:
        if not isinstance(resources, dict) or not all(isinstance(k, str) and k for k in resources):
            raise ValueError(
                f"{owner}: ray_resources={resources!r} must be a dict of custom resource names to amounts, "
                f"e.g. {{'accelerator': 1}}"
            )
        resources = {k: _amount(worker, f"ray_resources[{k!r}]", v) for k, v in resources.items()}
    memory = settings.whole(worker, "ray_memory", _read(worker, "ray_memory"), least=1, none="for Ray's default")
    node = _read(worker, "ray_node")
    if node is not None and (not isinstance(node, str) or not node.strip("=") or node.count("=") > 1):
        raise ValueError(
            f"{owner}: ray_node={node!r} must be a Ray node id (hex, as ray.nodes() lists it), a node label as "
            f"'key=value', or None"
        )
    soft = _read(worker, "ray_node_soft")
    if not isinstance(soft, bool):
        raise ValueError(f"{owner}: ray_node_soft={soft!r} must be True or False")
    return Placement(
        num_cpus=_amount(worker, "ray_num_cpus", _read(worker, "ray_num_cpus")),
        num_gpus=_amount(worker, "ray_num_gpus", _read(worker, "ray_num_gpus")),
        resources=resources,
        memory=memory,
        node=node,
        node_soft=soft,
    )
