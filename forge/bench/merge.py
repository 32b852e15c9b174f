"""`python -m forge.bench merge`: wall time of each merge method on three parents.

Full: three 25m-sized Cognate state dicts (`config/presets/25m-6gb.yaml`, vocab 32768) and their
common base; `--quick`: the default config's model. Parents are one random init plus Gaussian
noise (sigma 0.02) each, as Phase 1 hands them over; the time of one merge does not depend on
the values. Parameters: ties density 0.2, dare p 0.5, frankenmerge/dfs paths of n_layers + 1
blocks drawn from all three parents (dfs with scales != 1, so the fold is timed too).
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

import torch

from forge.config import DEFAULT_CONFIG, load
from forge.merge import MERGE_METHODS, MergeParams, StateDict, get_merge
from forge.models import CognateConfig, CognateForCausalLM, cognate_config_from

PRESET_25M = Path(DEFAULT_CONFIG).parent / "presets" / "25m-6gb.yaml"
METHODS = [m for m in MERGE_METHODS if m != "dare"]  # `dare` is an alias of dare_linear
REPEATS = 3
UNITS = {f"{m}_s": "s" for m in METHODS}


def _config(quick: bool) -> CognateConfig:
    if quick:
        cfg = load(DEFAULT_CONFIG)
        return cognate_config_from(cfg.model, cfg.data.vocab_size)
    return cognate_config_from(load(PRESET_25M).model, 32768)


@functools.lru_cache(maxsize=1)
def _parents(quick: bool) -> tuple[StateDict, list[StateDict]]:
    """(base, three parents), built once per process."""
    torch.manual_seed(0)
    base = CognateForCausalLM(_config(quick)).state_dict()
    gen = torch.Generator().manual_seed(1)
    return base, [_nudged(base, gen) for _ in range(3)]


def _nudged(sd: StateDict, gen: torch.Generator) -> StateDict:
    """`sd` + N(0, 0.02^2) noise; aliases (the tied lm_head) stay aliases, as in a loaded model."""
    out: StateDict = {}
    done: dict[int, torch.Tensor] = {}
    for key, value in sd.items():
        if value.data_ptr() not in done:
            done[value.data_ptr()] = value + 0.02 * torch.randn(value.shape, generator=gen)
        out[key] = done[value.data_ptr()]
    return out


def _params(n_layers: int) -> MergeParams:
    """One parameter set covering every method."""
    half = max(1, n_layers // 2)
    path = tuple((j % 3, j % n_layers) for j in range(n_layers + 1))
    return MergeParams(t=0.4, density=0.2, p=0.5, slices=((0, 0, n_layers), (1, half, n_layers)),
                       path=path, scales=tuple(1.0 + 0.1 * j for j in range(len(path))))


def measure(quick: bool) -> dict[str, float]:
    """Seconds per merge of each method (slerp: the first two parents)."""
    base, parents = _parents(quick)
    params = _params(_config(quick).n_layers)
    out = {}
    for name in METHODS:
        models = parents[:2] if name == "slerp" else parents
        start = time.perf_counter()
        get_merge(name)(models, base, params, torch.Generator().manual_seed(0))
        out[f"{name}_s"] = time.perf_counter() - start
    return out


def setup(quick: bool) -> dict[str, object]:
    """Sizes of the merged state dicts and the parameters used."""
    config = _config(quick)
    base, _ = _parents(quick)
    unique = {v.data_ptr(): v for v in base.values()}.values()  # the tied head counts once
    params = _params(config.n_layers)
    return {"config": "default" if quick else "25m-6gb (vocab 32768)",
            "params_per_model": sum(v.numel() for v in unique),
            "state_dict_mib": round(sum(v.numel() * v.element_size() for v in unique) / 2**20, 1),
            "models": 3, "n_layers": config.n_layers,
            "merge_params": {"t": params.t, "density": params.density, "p": params.p,
                             "slices": params.slices, "path": params.path}}
