"""What every merge method shares: `MergeParams`, input checks, task vectors, per-tensor mapping.

A state dict here is `dict[str, torch.Tensor]` as `model.state_dict()` returns it. Merges work
tensor by tensor in float32 and cast back to each tensor's dtype; tensors that are aliases of one
another in the first model (Cognate ties `lm_head.weight` to `model.embed_tokens.weight`) are
merged once and stay aliases, so a random method (dare) can never untie them.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch

StateDict = dict[str, torch.Tensor]


def _fail(name: str, value: object, allowed: str) -> None:
    raise ValueError(f"MergeParams.{name}: got {value!r}; allowed: {allowed}")


@dataclass(frozen=True)
class MergeParams:
    """Hyper-parameters of every merge method; each method reads only the fields it names."""

    weights: tuple[float, ...] | None = None
    """Per-model weights (linear, ties, dare_*), one per model; None = all equal."""
    normalize: bool = True
    """linear and dare_linear: divide by the sum of the weights (a weighted mean)."""
    t: float = 0.5
    """slerp: position on the arc in [0, 1]; 0 = models[0], 1 = models[1]."""
    density: float = 0.2
    """ties: fraction of each task-vector tensor kept by magnitude, in (0, 1] (TIES top-20%)."""
    p: float = 0.5
    """dare_*: drop probability of each task-vector entry, in [0, 1)."""
    scale: float = 1.0
    """ties, dare_*: lambda, the factor on the merged task vector: base + scale * tau_m."""
    slices: tuple[tuple[int, int, int], ...] = ()
    """frankenmerge: (model, start, end) layer ranges, end exclusive, stacked in order."""
    path: tuple[tuple[int, int], ...] = ()
    """dfs: the (model, layer) picks of the data-flow path, in order."""
    scales: tuple[float, ...] | None = None
    """dfs: input scale of each path step, > 0; None = all 1."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.t <= 1.0:
            _fail("t", self.t, "a number in [0, 1]")
        if not 0.0 < self.density <= 1.0:
            _fail("density", self.density, "a number in (0, 1]")
        if not 0.0 <= self.p < 1.0:
            _fail("p", self.p, "a number in [0, 1)")
        if not math.isfinite(self.scale):
            _fail("scale", self.scale, "a finite number")
        if self.weights is not None and not all(math.isfinite(w) for w in self.weights):
            _fail("weights", self.weights, "finite numbers, one per model")
        if self.scales is not None and not all(s > 0 and math.isfinite(s) for s in self.scales):
            _fail("scales", self.scales, "finite numbers > 0, one per path step")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> MergeParams:
        """Build from a config mapping (lists become tuples); an unknown key raises ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"MergeParams: unknown key(s) {unknown}; allowed: {sorted(known)}")
        return cls(**{k: _tuples(v) for k, v in values.items()})


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def check_models(models: Sequence[StateDict], base: StateDict | None = None,
                 count: int | None = None) -> None:
    """ValueError naming `models`/`base` unless all state dicts share keys and shapes."""
    if not models or (count is not None and len(models) != count):
        raise ValueError(f"models: got {len(models)} state dicts; allowed: "
                         f"{count if count is not None else 'at least 1'}")
    named = [(f"models[{i}]", sd) for i, sd in enumerate(models)]
    named += [("base", base)] if base is not None else []
    ref = models[0]
    for name, sd in named[1:]:
        if sd.keys() != ref.keys():
            diff = sorted(set(sd) ^ set(ref))[:5]
            raise ValueError(f"{name}: keys differ from models[0] (e.g. {diff})")
        for key, tensor in sd.items():
            if tensor.shape != ref[key].shape:
                raise ValueError(f"{name}[{key!r}]: shape {tuple(tensor.shape)} differs from "
                                 f"models[0]'s {tuple(ref[key].shape)}")


def model_weights(params: MergeParams, n: int) -> torch.Tensor:
    """The per-model weights as a float32 (n,) tensor; ValueError naming `weights` if n differs."""
    if params.weights is None:
        return torch.ones(n)
    if len(params.weights) != n:
        _fail("weights", params.weights, f"{n} numbers, one per model")
    return torch.tensor(params.weights, dtype=torch.float32)


def require_base(base: StateDict | None, method: str) -> StateDict:
    """`base`, or ValueError naming it: task-vector methods need the common ancestor."""
    if base is None:
        raise ValueError(f"base: {method} needs the base model the task vectors start from")
    return base


def map_tensors(models: Sequence[StateDict], fn: Callable[[list[torch.Tensor]], torch.Tensor],
                base: StateDict | None = None) -> StateDict:
    """Apply `fn` to each key's float32 tensors (base last if given); keep dtypes and ties.

    Non-floating tensors (integer buffers) are copied from models[0] unchanged.
    """
    out: StateDict = {}
    done: dict[tuple, torch.Tensor] = {}
    for key, first in models[0].items():
        alias = (first.data_ptr(), first.shape, first.stride())
        if alias in done:  # a tied weight: reuse the merged tensor
            out[key] = done[alias]
            continue
        if not first.is_floating_point():
            out[key] = first.clone()
        else:
            group = [sd[key].float() for sd in models] + ([base[key].float()] if base is not None else [])
            out[key] = fn(group).to(first.dtype)
        done[alias] = out[key]
    return out
