"""Causal sliding-window multi-head attention, the short-term branch of a Titans MAG block.

Token i attends to tokens j with i - window < j <= i (Titans arXiv 2501.00663, section 4.2,
"sliding window attention"). The mask is built from positions alone, so no later token can ever
reach an earlier one. The module records the largest pre-softmax logit of each head since the
last reset, which QK-clip (MuonClip, Kimi K2 arXiv 2507.20534) reads after the step.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from forge.models.cache import KVSlot
from forge.models.layers import apply_rope


def sliding_window_mask(seq_len: int, window: int, device: torch.device,
                        past: int = 0) -> torch.Tensor:
    """Boolean (T, past + T) mask, True where query i may see key j: 0 <= i - j < window, with
    the T queries the last T of the past + T key positions (past > 0: new tokens after a KV
    cache's `past` cached keys)."""
    q = torch.arange(seq_len, device=device)[:, None] + past
    delta = q - torch.arange(past + seq_len, device=device)[None, :]  # (T, past + T): i - j
    return (delta >= 0) & (delta < window)


def _masked_logits(q: torch.Tensor, k: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """q k^T / sqrt(hd) per head (B, nh, T, T_k), -inf where `allowed` is False."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.masked_fill(~allowed, float("-inf"))


class SlidingWindowAttention(nn.Module):
    """Multi-head attention restricted to a causal window, with RoPE on queries and keys.

    softmax(q k^T / sqrt(hd) + mask) v per head; `max_logit` (n_heads,) holds the running max of
    q k^T / sqrt(hd) over allowed pairs (the quantity QK-clip bounds by tau).
    """

    def __init__(self, d_model: int, n_heads: int, window: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_heads, self.head_dim, self.window = n_heads, d_model // n_heads, window
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.o_proj = nn.Linear(d_model, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)  # its p is passed to the fused kernel
        self.max_logit: torch.Tensor | None = None  # (nh,), not saved: a per-step statistic

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                window: int | None = None, allowed: torch.Tensor | None = None,
                kv: KVSlot | None = None) -> torch.Tensor:
        """(B, T, C) -> (B, T, C); cos/sin are RoPE tables (T, hd/2), one row per token;
        `window` overrides the constructor's (the block passes its config's live value).
        `allowed` (T, T), when given, replaces the sliding-window mask: parallel thought
        branches (`forge.models.branches`) bring their own diagonal mask, window included.
        With `kv` (incremental decoding, `forge.models.cache`) x holds the new tokens only: the
        slot's cached keys and values come first and `allowed` is (T, past + T)."""
        B, T, C = x.shape
        q = apply_rope(self._heads(self.q_proj(x)), cos, sin)  # (B, nh, T, hd)
        k = apply_rope(self._heads(self.k_proj(x)), cos, sin)  # (B, nh, T, hd)
        v = self._heads(self.v_proj(x))  # (B, nh, T, hd)
        if kv is not None:
            k, v = kv.extend(k, v)  # (B, nh, past + T, hd)
        if allowed is None:
            allowed = sliding_window_mask(T, window or self.window, x.device)  # (T, T)
        # QK-clip statistic: training passes with gradient only (the no-grad recursion cycles
        # use the same weights, and evaluation and generation need none)
        if self.training and torch.is_grad_enabled():
            self._record_max(q, k, allowed)
        p = self.dropout.p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)  # (B, nh, T, hd)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, C))

    def logits(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
               allowed: torch.Tensor) -> torch.Tensor:
        """Pre-softmax attention logits (B, nh, T, T) of input x (B, T, C), -inf where not
        allowed: what the fused kernel never materialises (for probes such as attention
        entropy, `forge.eval.context`)."""
        q = apply_rope(self._heads(self.q_proj(x)), cos, sin)  # (B, nh, T, hd)
        k = apply_rope(self._heads(self.k_proj(x)), cos, sin)  # (B, nh, T, hd)
        return _masked_logits(q, k, allowed)

    @torch.no_grad()
    def _record_max(self, q: torch.Tensor, k: torch.Tensor, allowed: torch.Tensor) -> None:
        """Running per-head max of the allowed logits; computed without autograd, so the (T, T)
        scores are transient and the fused attention kernel keeps its memory savings."""
        peak = _masked_logits(q, k, allowed).amax(dim=(0, 2, 3)).float()  # (nh,)
        self.max_logit = peak if self.max_logit is None else torch.maximum(self.max_logit, peak)

    def reset_max_logit(self) -> None:
        """Forget the recorded per-head maxima (QK-clip calls this after each step)."""
        self.max_logit = None
