"""Ray options from config: GPU requests degrade to CPU, placement spread or pack."""
from __future__ import annotations

import ray

from forge.config import Resources


def scheduling_strategy(placement: str) -> str:
    """'spread' -> Ray's SPREAD (one actor per node where possible); 'pack' -> DEFAULT."""
    return "SPREAD" if placement == "spread" else "DEFAULT"


def gpu_share(requested: float) -> float:
    """The GPU fraction to ask Ray for: none when the cluster has no GPU (then train on CPU)."""
    return requested if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def actor_options(res: Resources, placement: str, **extra) -> dict:
    """`.options(...)` keyword arguments for an actor with resources `res`."""
    return {"num_cpus": res.num_cpus, "num_gpus": gpu_share(res.num_gpus),
            "resources": dict(res.custom) or None,
            "scheduling_strategy": scheduling_strategy(placement), **extra}
