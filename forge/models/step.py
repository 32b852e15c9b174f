"""What every application of the recursion network shares within one forward pass.

The recursion applies the same blocks 2-8 times to one sequence; RoPE tables, the attention mask
and the memory written from the input are the same each time, so they are built once here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from forge.models.attention import sliding_window_mask
from forge.models.branches import BranchTensors
from forge.models.cache import CognateCache
from forge.models.layers import rope_tables


@dataclass(frozen=True)
class StepContext:
    """RoPE tables, attention mask and branch anchors of one forward pass."""

    cos: torch.Tensor  # (N, hd/2)
    sin: torch.Tensor  # (N, hd/2)
    allowed: torch.Tensor  # (N, N) bool: query i may see key j
    extra_anchor: torch.Tensor | None = None  # (N - T,) anchor position of each branch token


def step_context(seq_len: int, head_dim: int, theta: float, window: int, device: torch.device,
                 dtype: torch.dtype, branches: BranchTensors | None = None) -> StepContext:
    """The shared tensors for a sequence of `seq_len` tokens (base and branch tokens)."""
    cos, sin = rope_tables(seq_len, head_dim, theta, device, dtype)  # (N, hd/2) each
    if branches is None:
        return StepContext(cos, sin, sliding_window_mask(seq_len, window, device))
    # per-token positions; every one is < N (see BranchLayout)
    return StepContext(cos[branches.positions], sin[branches.positions], branches.allowed,
                       branches.extra_anchor)


def cached_step_context(new: int, cache: CognateCache, head_dim: int, theta: float, window: int,
                        device: torch.device, dtype: torch.dtype) -> StepContext:
    """The shared tensors for `new` tokens after the `cache.length` the cache has read: RoPE
    rows of their positions and the (new, past + new) mask over cached and new keys."""
    start = cache.length
    cos, sin = rope_tables(start + new, head_dim, theta, device, dtype)  # rows of the full table
    mask = sliding_window_mask(new, window, device, past=cache.past_keys())
    return StepContext(cos[start:], sin[start:], mask)
