"""Tiny Recursive Model schedule (Jolicoeur-Martineau, arXiv 2510.04871), made causal.

One small network f (a stack of MAG blocks) is applied again and again. With input embedding x,
answer state y and latent z, all (B, T, C):

    latent_recursion:  z <- f(z + y + x)  n times;  then  y <- f(y + z)
    deep_recursion:    T cycles of latent_recursion, the first T-1 under no_grad

f only ever mixes positions through causal attention and chunk-causal memory, so y and z at
position t depend on tokens <= t; the recursion itself is position-wise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from forge.models.block import MAGBlock
from forge.models.cache import CognateCache, KVSlot
from forge.models.branches import BranchTensors
from forge.models.configuration import CognateConfig
from forge.models.layers import RMSNorm
from forge.models.memory import MemoryState
from forge.models.step import StepContext, cached_step_context, step_context


class RecursionNet(nn.Module):
    """f(a, b) = RMSNorm(blocks(a + b)): the shared network of every recursion step.

    Input injection is by sum, as in TRM. The closing norm plays the part of TRM's post-norm: it
    keeps y and z at unit RMS however many times f is applied (pre-norm blocks alone would let the
    residual stream grow with every recursion).
    """

    def __init__(self, config: CognateConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(MAGBlock(config) for _ in range(config.n_layers))
        self.out_norm = RMSNorm(config.d_model, config.norm_eps)

    def prepare(self, x: torch.Tensor, branches: BranchTensors | None = None,
                cache: CognateCache | None = None) -> PassInputs:
        """RoPE, mask and per-block memories for input x (B, N, C), built once per forward pass;
        only the base tokens (the first branches.base_len, or all) write the memories. With
        `cache`, x holds the tokens after the cache's and the memories continue its carries."""
        c = self.config
        if cache is not None:
            return self._prepare_cached(x, cache)
        step = step_context(x.shape[1], c.head_dim, c.rope_theta, c.window, x.device, x.dtype,
                            branches)
        base = x if branches is None else x[:, :branches.base_len]
        return PassInputs(step, [self._write(layer, base) for layer in self.layers])

    def _write(self, layer: MAGBlock, x: torch.Tensor) -> MemoryState | None:
        """The block's memory write; recomputed in backward when its block is checkpointed (the
        chain of fast weights would otherwise be most of what a checkpointed step keeps)."""
        if layer.gradient_checkpointing and layer.training and torch.is_grad_enabled():
            return checkpoint(layer.write_memory, x, use_reentrant=False)
        return layer.write_memory(x)

    def _prepare_cached(self, x: torch.Tensor, cache: CognateCache) -> PassInputs:
        c = self.config
        step = cached_step_context(x.shape[1], cache, c.head_dim, c.rope_theta, c.window,
                                   x.device, x.dtype)
        carries = cache.memory or [None] * len(self.layers)
        written = [layer.write_memory_more(x, carry, cache.length)
                   for layer, carry in zip(self.layers, carries)]
        cache.memory = [carry for _, carry in written]
        cache.begin_pass()
        return PassInputs(step, [state for state, _ in written], cache)

    def forward(self, state: torch.Tensor, inject: torch.Tensor,
                inputs: PassInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) x2 -> ((B, T, C), mean gate entropy over the blocks)."""
        h = state + inject  # (B, T, C)
        entropy = h.new_zeros(())
        cache = inputs.cache
        application = cache.next_application() if cache is not None else 0
        for i, (layer, memory) in enumerate(zip(self.layers, inputs.memories)):
            kv = KVSlot(cache, application, i) if cache is not None else None
            h, e = layer(h, inputs.step, memory, kv)
            entropy = entropy + e
        return self.out_norm(h), entropy / len(self.layers)


@dataclass(frozen=True)
class PassInputs:
    """What every application of f within one forward pass shares (see `RecursionNet.prepare`)."""

    step: StepContext
    memories: list[MemoryState | None]
    cache: CognateCache | None = None  # incremental decoding: the KV cache this pass extends


Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def latent_recursion(f: Step, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
                     n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n updates z <- f(z, y + x), then y <- f(y, z) (TRM eq. in section 4). Returns (y, z, H)."""
    entropy = x.new_zeros(())
    for _ in range(n):
        z, e = f(z, y + x)
        entropy = entropy + e
    y, e = f(y, z)
    return y, z, (entropy + e) / (n + 1)


def deep_recursion(f: Step, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, T: int,
                   n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """T cycles of `latent_recursion`, the first T-1 without gradient (TRM section 4).

    Only the last cycle is back-propagated; the gate entropy returned is that cycle's.
    """
    with torch.no_grad():
        for _ in range(T - 1):
            y, z, _ = latent_recursion(f, x, y, z, n)
    return latent_recursion(f, x, y, z, n)
