"""Weight diversity of models that share an initialisation (DESIGN.md section 5, Phase 1).

The distance of models i and j is the cosine distance of their flattened deltas from the shared
seed: d_ij = 1 - <t_i, t_j> / (|t_i| |t_j|), t_i = theta_i - theta_seed. Identical training gives 0;
unrelated updates give about 1. Only floating-point tensors present in every model count.
"""
from __future__ import annotations

from itertools import combinations
from typing import Mapping

import torch

StateDict = Mapping[str, torch.Tensor]


def task_vector(model: StateDict, seed: StateDict) -> torch.Tensor:
    """theta - theta_seed, flattened over the shared floating-point tensors, in float64."""
    keys = sorted(k for k, v in seed.items() if v.is_floating_point() and k in model)
    return torch.cat([(model[k].double() - seed[k].double()).flatten() for k in keys])


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """1 - cos(a, b); 0 for two zero vectors (nothing moved: no diversity)."""
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return 0.0
    return min(2.0, max(0.0, float(1 - (a @ b) / (na * nb))))  # rounding can leave [0, 2]


def pairwise_diversity(models: Mapping[str, StateDict], seed: StateDict) -> dict[tuple[str, str], float]:
    """Cosine distance of the task vectors of every pair of models, keyed by (name_i, name_j)."""
    vectors = {name: task_vector(sd, seed) for name, sd in models.items()}
    return {(a, b): cosine_distance(vectors[a], vectors[b]) for a, b in combinations(sorted(vectors), 2)}
