"""The merge methods by name, all with one signature (mergekit's `merge_methods/registry.py` idea).

    merge = get_merge("ties")
    sd = merge([sd_a, sd_b, sd_c], base_sd, MergeParams(density=0.3), torch.Generator().manual_seed(0))
    model = CognateForCausalLM(merged_config(config, sd)); model.load_state_dict(sd)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from forge.merge.common import MergeParams, StateDict
from forge.merge.dare import dare_linear_merge, dare_ties_merge
from forge.merge.dfs import dfs_merge
from forge.merge.frankenmerge import frankenmerge_merge
from forge.merge.linear import linear_merge
from forge.merge.slerp import slerp_merge
from forge.merge.ties import ties_merge


class MergeMethod(Protocol):
    """merge(models, base, params, generator) -> merged state dict.

    `models` share keys and shapes (frankenmerge/dfs: block shapes); `base` is the common
    ancestor for task-vector methods (ties, dare_*) and the source of shared tensors for
    frankenmerge/dfs; `generator` drives random methods (dare_*). Bad input: ValueError naming
    the parameter.
    """

    def __call__(self, models: Sequence[StateDict], base: StateDict | None, params: MergeParams,
                 generator: torch.Generator | None = None) -> StateDict: ...


MERGE_METHODS: dict[str, MergeMethod] = {
    "linear": linear_merge,
    "slerp": slerp_merge,
    "ties": ties_merge,
    "dare_linear": dare_linear_merge,
    "dare_ties": dare_ties_merge,
    "dare": dare_linear_merge,  # the DARE paper's own pairing: drop, rescale, task arithmetic
    "frankenmerge": frankenmerge_merge,
    "dfs": dfs_merge,
}


def get_merge(name: str) -> MergeMethod:
    """The merge method registered as `name`; ValueError naming `method` otherwise."""
    try:
        return MERGE_METHODS[name]
    except KeyError:
        raise ValueError(f"method: unknown merge {name!r}; allowed: "
                         f"{', '.join(sorted(MERGE_METHODS))}") from None


def merge(name: str, models: Sequence[StateDict], base: StateDict | None = None,
          params: MergeParams | None = None,
          generator: torch.Generator | None = None) -> StateDict:
    """Look up `name` and run it with `params` (defaults if None)."""
    return get_merge(name)(models, base, params or MergeParams(), generator)
