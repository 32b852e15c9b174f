"""Layer surgery on Cognate state dicts: find the blocks, stack picked blocks, fix the config.

Cognate keeps its MAG blocks in `model.net.layers.<i>.` (`RecursionNet.layers`, an
`nn.ModuleList`); every other key (embedding, norms, halting head, y/z init) is shared by the
whole stack. Stacking copies the picked blocks into `model.net.layers.0..L-1` in path order and
the shared keys from one source model.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Sequence

import torch

from forge.merge.common import StateDict
from forge.models import CognateConfig

LAYER_PREFIX = "model.net.layers."
_LAYER_KEY = re.compile(r"^model\.net\.layers\.(\d+)\.(.+)$")


def layer_count(sd: StateDict) -> int:
    """Number of MAG blocks in a Cognate state dict (1 + the highest layer index)."""
    indices = [int(m.group(1)) for k in sd if (m := _LAYER_KEY.match(k))]
    return max(indices) + 1 if indices else 0


def layer_tensors(sd: StateDict, layer: int) -> StateDict:
    """The tensors of block `layer`, keyed by their name inside the block (e.g. `attn.q_proj.weight`)."""
    return {m.group(2): v for k, v in sd.items()
            if (m := _LAYER_KEY.match(k)) and int(m.group(1)) == layer}


def check_path(models: Sequence[StateDict], path: Sequence[tuple[int, int]], name: str) -> None:
    """ValueError naming `name` unless every (model, layer) pick exists and has block 0's shapes."""
    if not path:
        raise ValueError(f"MergeParams.{name}: empty; allowed: at least one layer")
    template = {k: v.shape for k, v in layer_tensors(models[0], 0).items()}
    for model, layer in path:
        if not 0 <= model < len(models) or not 0 <= layer < layer_count(models[model]):
            raise ValueError(f"MergeParams.{name}: pick (model {model}, layer {layer}) does not "
                             f"exist among {[layer_count(sd) for sd in models]} layers per model")
        shapes = {k: v.shape for k, v in layer_tensors(models[model], layer).items()}
        if shapes != template:
            raise ValueError(f"models[{model}]: layer {layer} differs in keys or shapes from "
                             "models[0]'s blocks")


def check_shared(reference: StateDict, shared: StateDict) -> None:
    """ValueError naming `base` unless its non-layer keys and shapes match the parents'."""
    want = {k: v.shape for k, v in reference.items() if not _LAYER_KEY.match(k)}
    got = {k: v.shape for k, v in shared.items() if not _LAYER_KEY.match(k)}
    if want != got:
        diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))[:5]
        raise ValueError(f"base: non-layer keys or shapes differ from models[0] (e.g. {diff})")


def stack_layers(models: Sequence[StateDict], shared: StateDict,
                 path: Sequence[tuple[int, int]]) -> StateDict:
    """A state dict with the non-layer tensors of `shared` and block j = path[j]'s block.

    Tensors are cloned, so editing the result never touches a parent.
    """
    out: StateDict = {}
    clones: dict[tuple, torch.Tensor] = {}
    for k, v in shared.items():
        if not _LAYER_KEY.match(k):  # aliases (the tied lm_head) stay aliases
            alias = (v.data_ptr(), v.shape, v.stride())
            if alias not in clones:
                clones[alias] = v.clone()
            out[k] = clones[alias]
    for j, (model, layer) in enumerate(path):
        for name, tensor in layer_tensors(models[model], layer).items():
            out[f"{LAYER_PREFIX}{j}.{name}"] = tensor.clone()
    return out


def merged_config(config: CognateConfig, sd: StateDict) -> CognateConfig:
    """A copy of the parents' `config` with `n_layers` set to the blocks in `sd`.

    Use after any merge: `CognateForCausalLM(merged_config(cfg, sd)).load_state_dict(sd)`.
    """
    out = copy.deepcopy(config)
    out.n_layers = out.num_hidden_layers = layer_count(sd)
    out.validate_fields()
    return out
