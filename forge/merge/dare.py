"""DARE: drop and rescale task vectors (Yu et al., "Language Models are Super Mario",
arXiv 2311.03099), then merge them linearly or with TIES' sign election.

With tau_i = theta_i - theta_base, drop rate p and m ~ Bernoulli(1 - p) entry-wise:

    tau_i' = m * tau_i / (1 - p)                 (E[tau_i'] = tau_i: unbiased)
    dare_linear: theta = base + scale * sum_i w_i tau_i' / sum_i w_i   (normalize=False: no divide)
    dare_ties:   theta = base + scale * disjoint_mean(elect_sign(tau_i'))  (no trim: DARE drops)

Draws come from `generator` (pass a seeded `torch.Generator` to reproduce a merge).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from forge.merge.common import (MergeParams, StateDict, check_models, map_tensors,
                                model_weights, require_base)
from forge.merge.linear import weighted_sum
from forge.merge.ties import elect_and_merge


def drop_and_rescale(tau: torch.Tensor, p: float,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero each entry with probability p, multiply the survivors by 1 / (1 - p)."""
    if p == 0.0:
        return tau.clone()
    keep = torch.rand(tau.shape, generator=generator, device=tau.device) >= p  # P = 1 - p
    return torch.where(keep, tau / (1.0 - p), torch.zeros_like(tau))


def _dare_taus(xs: Sequence[torch.Tensor], p: float,
               generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(base, stacked dropped task vectors (N, *shape)) from xs = models' tensors + base's."""
    base = xs[-1]
    return base, torch.stack([drop_and_rescale(x - base, p, generator) for x in xs[:-1]])


def dare_linear_merge(models: Sequence[StateDict], base: StateDict | None, params: MergeParams,
                      generator: torch.Generator | None = None) -> StateDict:
    """DARE then task arithmetic: base + scale * weighted mean of the dropped task vectors."""
    base = require_base(base, "dare_linear")
    check_models(models, base)
    weights = model_weights(params, len(models))
    if params.normalize and float(weights.sum()) == 0.0:
        raise ValueError(f"MergeParams.weights: got {params.weights!r}; allowed: weights with a "
                         "non-zero sum when normalize=True")

    def one(xs: list[torch.Tensor]) -> torch.Tensor:
        b, taus = _dare_taus(xs, params.p, generator)
        return b + params.scale * weighted_sum(taus, weights, params.normalize)

    return map_tensors(models, one, base=base)


def dare_ties_merge(models: Sequence[StateDict], base: StateDict | None, params: MergeParams,
                    generator: torch.Generator | None = None) -> StateDict:
    """DARE then TIES' sign election and disjoint mean (DARE's drop replaces TIES' trim)."""
    base = require_base(base, "dare_ties")
    check_models(models, base)
    weights = model_weights(params, len(models))

    def one(xs: list[torch.Tensor]) -> torch.Tensor:
        b, taus = _dare_taus(xs, params.p, generator)
        return b + params.scale * elect_and_merge(taus, weights)

    return map_tensors(models, one, base=base)
