"""Linear merge: a weighted average of the parents, tensor by tensor.

Wortsman et al., "Model soups" (arXiv 2203.05482); mergekit `linear`:

    theta = sum_i w_i theta_i / sum_i w_i        (normalize=True, the default)
    theta = sum_i w_i theta_i                    (normalize=False)
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from forge.merge.common import MergeParams, StateDict, check_models, map_tensors, model_weights


def weighted_sum(tensors: Sequence[torch.Tensor], weights: torch.Tensor,
                 normalize: bool) -> torch.Tensor:
    """sum_i w_i x_i, divided by sum_i w_i when `normalize`; x_i all of one shape."""
    stacked = torch.stack(list(tensors))  # (N, *shape)
    w = weights.view(-1, *([1] * (stacked.dim() - 1)))  # (N, 1, ...)
    total = (w * stacked).sum(0)
    return total / weights.sum() if normalize else total


def linear_merge(models: Sequence[StateDict], base: StateDict | None, params: MergeParams,
                 generator: torch.Generator | None = None) -> StateDict:
    """Weighted average of `models` (model soup); `base` and `generator` are unused.

    Uses `params.weights` (None = equal) and `params.normalize`. With normalize, the weights
    must not sum to 0 (ValueError naming `weights`).
    """
    check_models(models, base)
    weights = model_weights(params, len(models))
    if params.normalize and float(weights.sum()) == 0.0:
        raise ValueError(f"MergeParams.weights: got {params.weights!r}; allowed: weights with a "
                         "non-zero sum when normalize=True")
    return map_tensors(models, lambda xs: weighted_sum(xs, weights, params.normalize))
