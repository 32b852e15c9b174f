"""Spherical linear interpolation (slerp) of two models, tensor by tensor.

Shoemake, "Animating rotation with quaternion curves" (SIGGRAPH 1985); as in mergekit `slerp`,
each tensor is flattened to a vector and, with Omega the angle between v0 and v1,

    slerp(v0, v1; t) = sin((1 - t) Omega) / sin(Omega) * v0 + sin(t Omega) / sin(Omega) * v1

The angle comes from the normalised vectors; the formula is applied to the raw ones. When the
vectors are (anti-)colinear, |cos Omega| > 0.9995, sin(Omega) ~ 0 and the formula is unstable,
so it falls back to the linear (1 - t) v0 + t v1 (mergekit's DOT_THRESHOLD). t = 0 and t = 1
return the ends exactly.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from forge.merge.common import MergeParams, StateDict, check_models, map_tensors

COLINEAR_COS = 0.9995  # |cos| above this: lerp instead of slerp


def lerp(v0: torch.Tensor, v1: torch.Tensor, t: float) -> torch.Tensor:
    """(1 - t) v0 + t v1."""
    return (1.0 - t) * v0 + t * v1


def slerp(v0: torch.Tensor, v1: torch.Tensor, t: float) -> torch.Tensor:
    """Slerp of two same-shaped tensors (see the module docstring); lerp if colinear or zero."""
    if t == 0.0:
        return v0.clone()
    if t == 1.0:
        return v1.clone()
    a, b = v0.flatten().double(), v1.flatten().double()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return lerp(v0, v1, t)
    cos = torch.dot(a / na, b / nb).clamp(-1.0, 1.0)
    if cos.abs() > COLINEAR_COS:
        return lerp(v0, v1, t)
    omega = torch.arccos(cos)
    s0 = torch.sin((1.0 - t) * omega) / torch.sin(omega)
    s1 = torch.sin(t * omega) / torch.sin(omega)
    return (s0 * a + s1 * b).view_as(v0).to(v0.dtype)


def slerp_merge(models: Sequence[StateDict], base: StateDict | None, params: MergeParams,
                generator: torch.Generator | None = None) -> StateDict:
    """Slerp from models[0] (t=0) to models[1] (t=1) with `params.t`; exactly two models.

    `base` and `generator` are unused.
    """
    check_models(models, base, count=2)
    return map_tensors(models, lambda xs: slerp(xs[0], xs[1], params.t))
