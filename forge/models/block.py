"""Titans MAG block ("memory as a gate", arXiv 2501.00663, section 4.2), pre-norm.

    u   = RMSNorm(h)                                    # (B, T, C)
    a   = SlidingWindowAttention(u)                     # short-term, causal, window w
    m   = NeuralMemory.read(u, M)                       # long-term, chunk-causal
    g   = sigmoid(W_g u)                                # per-channel gate in (0, 1)
    h   = h + g * a + (1 - g) * m
    h   = h + SwiGLU(RMSNorm(h))

M is the memory this block wrote from the input tokens once per forward pass (`write_memory`):
the sequential fast-weight updates are the expensive part of Titans, and the recursion applies the
block many times to the same input, so it writes once and reads at every step.

The block also returns the mean Bernoulli entropy of its gate, H(g) = -g log g - (1-g) log(1-g),
which the model weights into the loss (`gate_entropy_weight`). With the memory disabled the block
is a plain pre-norm sliding-window transformer block and the entropy is 0.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from forge.models.attention import SlidingWindowAttention
from forge.models.configuration import CognateConfig
from forge.models.layers import RMSNorm, SwiGLU
from forge.models.cache import KVSlot
from forge.models.memory import MemoryCarry, MemoryState, NeuralMemory
from forge.models.step import StepContext


def bernoulli_entropy(g: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean of -g log g - (1 - g) log(1 - g) over all elements of g (nats)."""
    g = g.clamp(eps, 1 - eps)
    return -(g * g.log() + (1 - g) * (1 - g).log()).mean()


class MAGBlock(GradientCheckpointingLayer):
    """One gated attention + memory block; checkpointable via `gradient_checkpointing_enable()`."""

    def __init__(self, config: CognateConfig) -> None:
        super().__init__()
        c = self.config = config  # window and chunk are read live: specialisations change them
        self.attn_norm = RMSNorm(c.d_model, c.norm_eps)
        self.attn = SlidingWindowAttention(c.d_model, c.n_heads, c.window, c.dropout)
        self.memory = None
        if c.memory_enabled:
            self.memory = NeuralMemory(c.d_model, c.memory_dim, c.memory_hidden, c.memory_chunk,
                                       c.memory_lr_max, c.memory_decay_init, c.memory_momentum_init)
            self.mag_gate = nn.Linear(c.d_model, c.d_model)
        self.mlp_norm = RMSNorm(c.d_model, c.norm_eps)
        self.mlp = SwiGLU(c.d_model, c.d_ff)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, h: torch.Tensor, step: StepContext,
                memory: MemoryState | None = None,
                kv: KVSlot | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) -> ((B, T, C), scalar gate entropy). `step` holds the RoPE tables and the
        attention mask of this forward pass; `memory` the fast weights this block's memory
        wrote from the input (`write_memory`). With thought branches T counts the base tokens
        and the branch tokens after them (`forge.models.branches`). `kv` is this block's slot of
        the KV cache when decoding incrementally (`forge.models.cache`)."""
        u = self.attn_norm(h)  # (B, T, C)
        a = self.attn(u, step.cos, step.sin, allowed=step.allowed, kv=kv)  # (B, T, C)
        if self.memory is None or memory is None:
            mixed, entropy = a, h.new_zeros(())
        else:
            n = memory.length  # base tokens; branch tokens after them only read
            m = self.memory.read(u[:, :n], memory, extra=u[:, n:], extra_anchor=step.extra_anchor)
            g = torch.sigmoid(self.mag_gate(u))  # (B, T, C)
            mixed, entropy = g * a + (1 - g) * m, bernoulli_entropy(g)
        h = h + self.dropout(mixed)
        h = h + self.dropout(self.mlp(self.mlp_norm(h)))
        return h, entropy

    def write_memory(self, x: torch.Tensor) -> MemoryState | None:
        """The long-term memory written from the input tokens x (B, T, C), once per forward pass:
        every recursion step then reads the same context memory with its own queries."""
        if self.memory is None:
            return None
        return self.memory.write(self.attn_norm(x), chunk=self.config.memory_chunk)

    def write_memory_more(self, x: torch.Tensor, carry: MemoryCarry | None,
                          start: int) -> tuple[MemoryState | None, MemoryCarry | None]:
        """`write_memory` for new tokens x (B, t, C) at positions start.. (`NeuralMemory.write_more`)."""
        if self.memory is None:
            return None, None
        return self.memory.write_more(self.attn_norm(x), carry, start, self.config.memory_chunk)
