"""Building blocks shared by every Cognate block: RMSNorm, rotary embeddings, SwiGLU MLP."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square norm (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * w."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise the last dimension of `x` (..., C) and scale it by the learned weight."""
        rms = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return x * rms * self.weight


def rope_tables(seq_len: int, head_dim: int, theta: float, device: torch.device,
                dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables of RoPE (Su et al. 2021, arXiv 2104.09864), each (T, head_dim / 2).

    Angle of position p and pair i: p * theta^(-2i / head_dim). Computed per call (no buffers),
    so the tables never go stale across `from_pretrained` or device moves.
    """
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    angles = torch.arange(seq_len, device=device, dtype=torch.float32)[:, None] * inv_freq  # (T, hd/2)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the two halves of each head of `x` (B, nh, T, hd) by the position angles.

    (a, b) -> (a cos - b sin, a sin + b cos): a rotation, so it keeps norms and is linear in x;
    QK-clip relies on that linearity (scaling W_q scales q after RoPE by the same factor).
    """
    a, b = x.chunk(2, dim=-1)  # (B, nh, T, hd/2) each
    return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)


class SwiGLU(nn.Module):
    """Gated MLP of Shazeer 2020 (arXiv 2002.05202): down(silu(gate(x)) * up(x))."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=False)
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, T, C)."""
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
