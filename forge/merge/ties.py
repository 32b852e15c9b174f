"""TIES-merging: trim, elect sign, disjoint merge (Yadav et al., arXiv 2306.01708).

With task vectors tau_i = theta_i - theta_base and per-model weights w_i (default 1):

    trim:     tau_i' = tau_i on its top-k entries by |tau_i|, 0 elsewhere; k = round(density * n)
              per tensor of n entries (exactly k, at least 1)
    elect:    gamma = sign(sum_i w_i tau_i')                    (the sign with more total mass)
    disjoint: tau_m = sum_{i in A} w_i tau_i' / sum_{i in A} w_i, A = {i : sign(tau_i') = gamma}
    merge:    theta = theta_base + scale * tau_m                 (scale is the paper's lambda)

An entry where no trimmed task vector agrees with gamma (or all are 0) keeps the base value.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from forge.merge.common import (MergeParams, StateDict, check_models, map_tensors,
                                model_weights, require_base)


def kept_count(numel: int, density: float) -> int:
    """k = round(density * numel), at least 1: the entries trim keeps in one tensor."""
    return max(1, min(numel, round(density * numel)))


def trim(tau: torch.Tensor, density: float) -> torch.Tensor:
    """Keep exactly `kept_count` largest-magnitude entries of `tau`, zero the rest (TIES step 1).

    Ties in magnitude are broken by `torch.topk`, so the count is exact.
    """
    flat = tau.flatten()
    k = kept_count(flat.numel(), density)
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[flat.abs().topk(k, sorted=False).indices] = True
    return torch.where(keep, flat, torch.zeros_like(flat)).view_as(tau)


def elect_and_merge(taus: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """TIES steps 2-3 on stacked task vectors (N, *shape): elected sign, disjoint weighted mean."""
    w = weights.view(-1, *([1] * (taus.dim() - 1)))  # (N, 1, ...)
    gamma = torch.sign((w * taus).sum(0))  # (*shape)
    agree = (torch.sign(taus) == gamma) & (taus != 0)  # (N, *shape)
    mass = (w * agree).sum(0)  # (*shape): sum of weights of agreeing models
    total = (w * taus * agree).sum(0)
    return torch.where(mass != 0, total / torch.where(mass != 0, mass, 1.0), 0.0)


def ties_tensor(xs: Sequence[torch.Tensor], weights: torch.Tensor, density: float,
                scale: float) -> torch.Tensor:
    """TIES on one key: xs = the models' tensors followed by the base's."""
    base = xs[-1]
    taus = torch.stack([trim(x - base, density) for x in xs[:-1]])  # (N, *shape)
    return base + scale * elect_and_merge(taus, weights)


def ties_merge(models: Sequence[StateDict], base: StateDict | None, params: MergeParams,
               generator: torch.Generator | None = None) -> StateDict:
    """TIES merge of `models` onto `base` with `density`, `weights`, `scale`; no randomness."""
    base = require_base(base, "ties")
    check_models(models, base)
    weights = model_weights(params, len(models))
    return map_tensors(models, lambda xs: ties_tensor(xs, weights, params.density, params.scale),
                       base=base)
