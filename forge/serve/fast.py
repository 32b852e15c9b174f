"""Serving a packed ternary model at the cost of its fp original: lean inference layers.

`forge.load_model` rebuilds every BitNet layer as a frozen `TernaryLinear`: the trits are
unpacked once to W = trits * scale, and each call quantises its input to 8 bits per token
(absmax, arXiv 2402.17764) through the straight-through wrapper training needs. Serving needs no
gradient, and in a Cognate block seven projections read the same normalised input (attention
q, k, v, memory query, key, value and the MAG gate) and two more share the MLP's: quantising that
input once instead of seven times removes most of the extra work. `LeanTernaryLinear` computes
exactly what the frozen layer computes (same operations on the same values, no STE no-ops); the
tests check the logits are bit-equal.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forge.quant import TernaryLinear, ternary_layers
from forge.quant.quantize import ACT_EPS


@torch.no_grad()
def absmax_dequantised(x: torch.Tensor, bits: int) -> torch.Tensor:
    """codes * scale of `forge.quant.quantize_activations(x, bits)`, bit for bit, in fewer ops.

    scale = max(max|x|, eps) / (2^(b-1) - 1); codes = round(x / scale). The clamp of the codes
    to +-(2^(b-1) - 1) is dropped: |x / scale| <= 127 (1 + 2^-23) < 127.5, so it never binds.
    """
    top = 2 ** (bits - 1) - 1
    scale = torch.linalg.vector_norm(x, float("inf"), dim=-1, keepdim=True)  # (..., 1) max|x|
    scale = scale.clamp_min_(ACT_EPS).div_(top)
    return (x / scale).round_().mul_(scale)


class _LastInput:
    """The last quantised input of a model's lean layers (one forward at a time per model)."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.x: torch.Tensor | None = None  # held so its id cannot be reused while cached
        self.x_q: torch.Tensor | None = None

    def quantised(self, x: torch.Tensor, bits: int) -> torch.Tensor:
        key = (id(x), x._version, bits)
        if self.key != key or self.x is not x:
            self.key, self.x, self.x_q = key, x, absmax_dequantised(x, bits)
        return self.x_q


class LeanTernaryLinear(nn.Linear):
    """y = absmax_b(x) @ W^T + b with W = trits * scale, for inference (no autograd wrapper)."""

    def __init__(self, layer: TernaryLinear, shared: _LastInput) -> None:
        super().__init__(layer.in_features, layer.out_features, layer.bias is not None,
                         device="meta")
        self.weight = nn.Parameter(layer.ternary_weight().detach(), requires_grad=False)
        self.bias = layer.bias
        self.act_bits, self.shared = layer.act_bits, shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out), the same values as the frozen TernaryLinear."""
        return F.linear(self.shared.quantised(x, self.act_bits), self.weight, self.bias)


def lean_ternary(model: nn.Module) -> int:
    """Swap every frozen TernaryLinear of `model` for a LeanTernaryLinear, in place; returns how
    many. For inference only: the lean layers have no latent weight to train."""
    shared = _LastInput()
    layers = {n: m for n, m in ternary_layers(model).items() if m.frozen}
    for name, layer in layers.items():
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child,
                LeanTernaryLinear(layer, shared))
    return len(layers)
