"""BitNet b1.58 quantisers (Ma et al., arXiv 2402.17764, section 2): absmean ternary weights and
8-bit absmax activations, as pure functions returning integer codes and a dequantisation scale.

Both follow one convention: `x ~= codes * scale`, with `scale` broadcastable against `codes`.
"""
from __future__ import annotations

import torch

WEIGHT_EPS = 1e-5  # keeps gamma > 0 for an all-zero weight (every trit is then 0)
ACT_EPS = 1e-5  # keeps max|x| > 0 for an all-zero token


def quantize_weights(w: torch.Tensor, per_channel: bool = False, eps: float = WEIGHT_EPS,
                     group_rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Absmean ternary quantisation of a weight (arXiv 2402.17764, eqs. 1-3).

        gamma = mean(|W|) + eps
        W_q   = RoundClip(W / gamma, -1, 1),   RoundClip(x, a, b) = max(a, min(b, round(x)))

    Args:
        w: weight (out_features, in_features) or any shape; dim 0 is the output channel.
        per_channel: one gamma per output channel (mean over the other dims) instead of one per
            tensor. The paper uses one per tensor; per-channel is finer at 32 bits per row.
        eps: added to gamma.
        group_rows: one gamma per block of this many consecutive output rows (e.g. one attention
            head of a q/k projection, so QK-clip's per-head rescale keeps the trits); ignored
            when `per_channel`. Must divide out_features.

    Returns:
        (trits, gamma): trits int8 with values in {-1, 0, 1} and the shape of `w`; gamma float32,
        shape () per tensor or (out_features, 1, ...) per channel or group (a group's value
        repeated on its rows), so `w ~= trits * gamma`.
    """
    w32 = w.detach().float()
    if per_channel:
        if w.dim() < 2:
            raise ValueError(f"quantize_weights: per_channel needs a weight with >= 2 dims, got "
                             f"shape {tuple(w.shape)}")
        gamma = w32.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True) + eps  # (out, 1, ...)
    elif group_rows is not None:
        if w.dim() < 2 or group_rows < 1 or w.shape[0] % group_rows:
            raise ValueError(f"quantize_weights: group_rows={group_rows} must divide the "
                             f"{w.shape[0] if w.dim() else 0} rows of a >= 2-dim weight")
        groups = w32.reshape(w.shape[0] // group_rows, -1).abs().mean(dim=1) + eps  # (G,)
        gamma = groups.repeat_interleave(group_rows).view(-1, *[1] * (w.dim() - 1))  # (out, 1, ...)
    else:
        gamma = w32.abs().mean() + eps  # ()
    trits = (w32 / gamma).round().clamp(-1, 1).to(torch.int8)
    return trits, gamma


def quantize_activations(x: torch.Tensor, bits: int = 8,
                         eps: float = ACT_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Absmax quantisation per token, over the last dim (arXiv 2402.17764 section 2, after
    BitNet arXiv 2310.11453 eq. 4).

        Q_b = 2^(b-1),   s = (Q_b - 1) / max|x|
        x_q = Clip(round(x * s), -Q_b + 1, Q_b - 1)

    The paper writes Clip(x * Q_b / gamma, -Q_b + eps, Q_b - eps); on integer codes that is the
    symmetric range +-(Q_b - 1) (+-127 for 8 bits), so the codes fit a signed b-bit integer and
    no rounding ever clips: |x - x_q * scale| <= scale / 2 exactly.

    Args:
        x: activations (..., C); each slice along the last dim (a token) gets its own scale.
        bits: b >= 2.

    Returns:
        (codes, scale): codes with the dtype of `x` holding integers in [-(Q_b-1), Q_b-1],
        shape (..., C); scale = max|x| / (Q_b - 1), shape (..., 1), so `x ~= codes * scale`.
    """
    if bits < 2:
        raise ValueError(f"quantize_activations: bits={bits}; allowed: an integer >= 2")
    top = 2 ** (bits - 1) - 1  # Q_b - 1
    scale = x.detach().abs().amax(dim=-1, keepdim=True).clamp_min(eps) / top  # (..., 1)
    codes = (x.detach() / scale).round_().clamp_(-top, top)  # (..., C); in place: a fresh tensor
    return codes, scale


def straight_through(x: torch.Tensor, x_q: torch.Tensor) -> torch.Tensor:
    """The straight-through estimator (Bengio et al. 2013; arXiv 2402.17764 trains with it).

    Forward value: exactly `x_q`; gradient: identity to `x`. Written as
    x_q.detach() + (x - x.detach()) rather than x + (x_q - x).detach(): the same gradient, but
    x - x.detach() is exactly 0, so the value is bit-for-bit x_q (the second form can be off by
    an ulp, and a reloaded packed model must give the very same logits).
    """
    return x_q.detach() + (x - x.detach())
