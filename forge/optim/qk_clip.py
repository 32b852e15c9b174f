"""QK-clip (MuonClip; Kimi K2, arXiv 2507.20534, section 2.1).

After an optimizer step, for every attention head h whose largest pre-softmax logit over the
batch, S_max^h = max_ij q_i k_j / sqrt(d), exceeds tau, scale that head's query and key
projection rows by gamma = sqrt(tau / S_max^h). Logits are bilinear in (W_q, W_k), so the same
inputs then give S_max^h * gamma^2 = tau exactly; RoPE is a rotation and does not change this.
Heads at or below tau are untouched.

Works on any module exposing `max_logit` (n_heads,), `n_heads`, `q_proj`, `k_proj` and
`reset_max_logit()` (see `forge.models.attention.SlidingWindowAttention`).
"""
from __future__ import annotations

import torch
from torch import nn


def clip_factors(max_logit: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-head row scale sqrt(min(1, tau / S_max)), (n_heads,)."""
    return torch.sqrt(torch.clamp(tau / max_logit.clamp_min(1e-12), max=1.0))


def _clippable(module: nn.Module) -> bool:
    return all(hasattr(module, a) for a in ("max_logit", "n_heads", "q_proj", "k_proj"))


@torch.no_grad()
def qk_clip_(model: nn.Module, tau: float) -> dict[str, int]:
    """Rescale W_q and W_k rows of every head whose recorded max logit exceeds tau.

    Returns {module name: number of heads clipped}; resets every module's record.
    """
    clipped = {}
    for name, module in model.named_modules():
        if not _clippable(module) or module.max_logit is None:
            continue
        scale = clip_factors(module.max_logit, tau)  # (nh,)
        rows = scale.repeat_interleave(module.q_proj.weight.shape[0] // module.n_heads)  # (C,)
        module.q_proj.weight.mul_(rows[:, None].to(module.q_proj.weight.dtype))
        module.k_proj.weight.mul_(rows[:, None].to(module.k_proj.weight.dtype))
        clipped[name] = int((scale < 1.0).sum())
        module.reset_max_logit()
    return clipped


def max_logits(model: nn.Module) -> torch.Tensor | None:
    """Largest recorded pre-softmax logit over all attention modules, or None if none recorded."""
    peaks = [m.max_logit.max() for m in model.modules() if _clippable(m) and m.max_logit is not None]
    return torch.stack(peaks).max() if peaks else None
