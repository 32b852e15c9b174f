"""Data-flow-space (DFS) merging: an evolved path through the parents' layers with input scaling.

Akiba et al., "Evolutionary Optimization of Model Merging Recipes" (Sakana, arXiv 2403.13187),
section 3.2: the merged model runs the sequence of layers `path = [(model, layer), ...]` picked
from the parents (the paper decodes it from an evolved inclusion array over repeated layer
slots; decoding belongs to the search, here the path is given). Step j's input is multiplied by
a scale s_j (the paper's W[i_{j-1}, i_j], which counters the distribution shift between layers
of different models):  h_{j+1} = block_j(s_j * h_j).

Choice: the scales are folded into the weights, so the result is a plain Cognate state dict that
`CognateForCausalLM(merged_config(cfg, sd))` loads, saves and `generate()`s with, no model
change or wrapper. The fold is exact up to RMSNorm's eps: a MAG block reads its input only
through RMSNorm (scale-invariant) plus the residual, and its three output projections are
linear without bias, so with C_{j+1} = s_0 * ... * s_j

    block_j(C_{j+1} g) = C_{j+1} * block_j'(g),  block_j' = block_j with o_proj, mem_out and
                                                  down_proj divided by C_{j+1}

and the factor left after the last block vanishes in `RecursionNet.out_norm`. Scales must be
> 0 (RMSNorm is not invariant to a sign flip). With all scales 1 nothing is touched: the
identity path over one parent is that parent, bit for bit.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from forge.merge.common import MergeParams, StateDict
from forge.merge.layers import LAYER_PREFIX, check_path, check_shared, merged_config, stack_layers
from forge.models import CognateConfig

# The bias-free linear maps that write into a block's residual stream.
OUTPUT_PROJECTIONS = ("attn.o_proj.weight", "memory.mem_out.weight", "mlp.down_proj.weight")


def fold_input_scales(sd: StateDict, scales: Sequence[float]) -> StateDict:
    """Divide block j's output projections by the cumulative scale s_0 * ... * s_j (in place)."""
    cumulative = 1.0
    for j, s in enumerate(scales):
        cumulative *= s
        if cumulative == 1.0:
            continue
        for name in OUTPUT_PROJECTIONS:
            key = f"{LAYER_PREFIX}{j}.{name}"
            if key in sd:  # mem_out is absent when the memory is disabled
                sd[key] = sd[key] / cumulative
    return sd


def dfs_merge(models: Sequence[StateDict], base: StateDict | None, params: MergeParams,
              generator: torch.Generator | None = None) -> StateDict:
    """The layers of `params.path` stacked, `params.scales` folded in; shared tensors from
    `base` or models[0]."""
    path = [tuple(step) for step in params.path]
    check_path(models, path, "path")
    scales = params.scales if params.scales is not None else (1.0,) * len(path)
    if len(scales) != len(path):
        raise ValueError(f"MergeParams.scales: got {len(scales)} scales; allowed: one per path "
                         f"step ({len(path)})")
    if not math.isfinite(math.prod(scales)) or math.prod(scales) == 0.0:
        raise ValueError(f"MergeParams.scales: product {math.prod(scales)} under/overflows")
    shared = base if base is not None else models[0]
    check_shared(models[0], shared)
    return fold_input_scales(stack_layers(models, shared, path), scales)


def dfs(models: Sequence[StateDict], config: CognateConfig, path: Sequence[tuple[int, int]],
        scales: Sequence[float] | None = None,
        base: StateDict | None = None) -> tuple[StateDict, CognateConfig]:
    """The DFS state dict and its config (n_layers = len(path)), ready to load."""
    params = MergeParams(path=tuple(map(tuple, path)),
                         scales=None if scales is None else tuple(scales))
    sd = dfs_merge(models, base, params)
    return sd, merged_config(config, sd)
