"""Ray options from config: GPU requests degrade to CPU, placement spread or pack."""
from __future__ import annotations

import math

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from forge.config import Resources


def scheduling_strategy(placement: str) -> str:
    """'spread' -> Ray's SPREAD (one actor per node where possible); 'pack' -> DEFAULT."""
    return "SPREAD" if placement == "spread" else "DEFAULT"


def gpu_share(requested: float) -> float:
    """The GPU fraction to ask Ray for: none when the cluster has no GPU (then train on CPU)."""
    return requested if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def actor_options(res: Resources, placement: str, **extra) -> dict:
    """`.options(...)` keyword arguments for an actor with resources `res`. An actor that asks
    for nothing (a coordinator: Phase 1 and 2 only start trainers and trials) runs on the head
    node, beside the registry: losing a worker never takes the coordinator with it, and the head
    can always take it. (A soft affinity is not enough: measured, Ray 2.60 put a 0-CPU actor
    with a soft head affinity on a worker although the head was free.)"""
    gpus = gpu_share(res.num_gpus)
    strategy = scheduling_strategy(placement)
    if res.num_cpus == 0 and gpus == 0 and not res.custom:
        strategy = NodeAffinitySchedulingStrategy(head_node_id(), soft=False)
    return {"num_cpus": res.num_cpus, "num_gpus": gpus, "resources": dict(res.custom) or None,
            "scheduling_strategy": strategy, **extra}


def equal_share(node_cpus: list[float], n: int) -> float:
    """The largest CPU share (2 decimals, at most total / n) that lets `n` equal actors run at
    once on nodes of these sizes: 3 trainers on two 1-CPU nodes get 0.5 each, not 0.66."""
    total = sum(node_cpus)
    candidates = sorted({_down(c / k) for c in node_cpus for k in range(1, n + 1)}
                        | {_down(total / n)}, reverse=True)
    for share in candidates:
        fits = sum(int(c / share + 1e-9) for c in node_cpus) if share > 0 else 0
        if 0 < share <= total / n + 1e-9 and fits >= n:
            return share
    return 0.01


def _down(x: float) -> float:
    return math.floor(x * 100 + 1e-9) / 100  # 2 decimals, rounded down so shares always fit


def node_cpus() -> list[float]:
    """CPUs of every live node of the cluster."""
    return [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node["Alive"]]


def head_node_id() -> str:
    """The head node (Ray gives it the `node:__internal_head__` resource); this process's node
    when none is found."""
    for node in ray.nodes():
        if node["Alive"] and "node:__internal_head__" in node["Resources"]:
            return node["NodeID"]
    return ray.get_runtime_context().get_node_id()
