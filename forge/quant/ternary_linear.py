"""`TernaryLinear`: the BitLinear layer of BitNet b1.58 (arXiv 2402.17764) as a drop-in
`nn.Linear`.

    y = x_q @ W_q^T + b,   W_q = gamma * RoundClip(W / gamma, -1, 1),  gamma = mean|W|
                           x_q = absmax 8-bit per token (see `forge.quant.quantize`)

Training keeps the full-precision latent weight W; the straight-through estimator passes the
gradient of W_q to W unchanged (and of x_q to x). The bias, when present, stays in full precision.
Unlike the paper's BitLinear there is no norm inside the layer: every Cognate block already
normalises the input of its first projections, and a drop-in swap must not change the function
beyond the quantisation itself.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forge.quant.quantize import quantize_activations, quantize_weights, straight_through


class TernaryLinear(nn.Linear):
    """nn.Linear with absmean ternary weights and absmax activations, trained by STE.

    A layer loaded from a packed artifact is *frozen*: it holds its trits and scale and uses them
    as they are (no latent weight exists to requantise). `unfreeze()` makes the dequantised
    weight the new latent weight, so STE fine-tuning can resume.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 per_channel: bool = False, act_bits: int = 8, group_rows: int | None = None,
                 device=None, dtype=None) -> None:
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        if group_rows is not None and (group_rows < 1 or out_features % group_rows):
            raise ValueError(f"TernaryLinear: group_rows={group_rows} must divide "
                             f"out_features={out_features}")
        self.per_channel, self.act_bits = per_channel, act_bits
        self.group_rows = None if per_channel else group_rows  # rows sharing one scale
        self.register_buffer("frozen_trits", None, persistent=False)  # int8 (out, in)
        self.register_buffer("frozen_scale", None, persistent=False)  # float32 () or (out, 1)
        self.register_buffer("frozen_weight", None, persistent=False)  # trits * scale, cached

    @classmethod
    def from_linear(cls, linear: nn.Linear, per_channel: bool = False, act_bits: int = 8,
                    group_rows: int | None = None) -> TernaryLinear:
        """A TernaryLinear sharing `linear`'s weight and bias Parameters (latent weights)."""
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None,
                    per_channel, act_bits, group_rows, device="meta")
        layer.weight = linear.weight
        layer.bias = linear.bias
        return layer

    @property
    def frozen(self) -> bool:
        """True when the layer runs from stored trits (a reloaded packed model)."""
        return self.frozen_trits is not None

    def ternary(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(trits int8 (out, in), gamma float32 () or (out, 1)) of the current weight."""
        if self.frozen:
            return self.frozen_trits, self.frozen_scale
        return quantize_weights(self.weight, self.per_channel, group_rows=self.group_rows)

    def ternary_weight(self) -> torch.Tensor:
        """W_q = trits * gamma (out, in), in the weight's dtype; what the forward multiplies by."""
        if self.frozen:
            return self.frozen_weight
        trits, gamma = self.ternary()
        return (trits.to(gamma.dtype) * gamma).to(self.weight.dtype)

    def freeze(self, trits: torch.Tensor, scale: torch.Tensor) -> None:
        """Run from these trits (out, in) and scale from now on (used by `load_ternary`)."""
        if tuple(trits.shape) != tuple(self.weight.shape):
            raise ValueError(f"TernaryLinear.freeze: trits shape {tuple(trits.shape)} != weight "
                             f"shape {tuple(self.weight.shape)}")
        self.frozen_trits, self.frozen_scale = trits.to(torch.int8), scale.float()
        self.frozen_weight = (self.frozen_trits.float() * self.frozen_scale).to(self.weight.dtype)
        with torch.no_grad():
            self.weight.copy_(self.frozen_weight)

    def unfreeze(self) -> None:
        """Drop the stored trits; the (dequantised) weight becomes the latent weight again."""
        self.frozen_trits = self.frozen_scale = self.frozen_weight = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out) with quantised weights and activations (STE gradients)."""
        codes, scale = quantize_activations(x, self.act_bits)  # (..., in), (..., 1)
        x_q = codes * scale  # (..., in)
        if x.requires_grad:  # serving runs without autograd: skip the estimator's three ops
            x_q = straight_through(x, x_q)
        w_q = self.ternary_weight()  # (out, in)
        if not self.frozen:
            w_q = straight_through(self.weight, w_q)
        return F.linear(x_q, w_q, self.bias)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, per_channel={self.per_channel}, "
                f"act_bits={self.act_bits}, group_rows={self.group_rows}, frozen={self.frozen}")
