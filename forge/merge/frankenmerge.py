"""Frankenmerge: passthrough layer stacking from slices of different parents.

As mergekit's `passthrough` method with `slices:` (Goddard et al., "Arcee's MergeKit",
arXiv 2403.13257; e.g. SOLAR's depth up-scaling, arXiv 2312.15166): no arithmetic at all; the
merged block list is the concatenation of the requested layer ranges,

    slices = [(0, 0, 2), (1, 1, 3)]  ->  blocks [m0.L0, m0.L1, m1.L1, m1.L2]   (end exclusive)

so the layer count may change. Embedding, norms, halting head and y/z init come from `base`
when given, else from models[0]. `merged_config` gives the matching `CognateConfig`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from forge.merge.common import MergeParams, StateDict
from forge.merge.layers import check_path, check_shared, merged_config, stack_layers
from forge.models import CognateConfig


def slices_to_path(slices: Sequence[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """[(model, start, end)] -> [(model, layer)] in order; ValueError naming `slices` if malformed."""
    if not slices:
        raise ValueError("MergeParams.slices: empty; allowed: (model, start, end) ranges")
    path = []
    for item in slices:
        if len(item) != 3 or not 0 <= item[1] < item[2]:
            raise ValueError(f"MergeParams.slices: got {item!r}; allowed: (model, start, end) "
                             "with 0 <= start < end")
        model, start, end = item
        path += [(model, layer) for layer in range(start, end)]
    return path


def frankenmerge_merge(models: Sequence[StateDict], base: StateDict | None, params: MergeParams,
                       generator: torch.Generator | None = None) -> StateDict:
    """Stack `params.slices` of `models`; shared tensors from `base` or models[0]."""
    path = slices_to_path(params.slices)
    check_path(models, path, "slices")
    shared = base if base is not None else models[0]
    check_shared(models[0], shared)
    return stack_layers(models, shared, path)


def frankenmerge(models: Sequence[StateDict], config: CognateConfig,
                 slices: Sequence[tuple[int, int, int]],
                 base: StateDict | None = None) -> tuple[StateDict, CognateConfig]:
    """The stacked state dict and its config (n_layers = total slice length), ready to load."""
    sd = frankenmerge_merge(models, base, MergeParams(slices=tuple(map(tuple, slices))))
    return sd, merged_config(config, sd)
