"""The parameters Quiet-STaR adds to a Cognate model: thought start/end embeddings, mixing head.

They live in the model (not in `forge.reasoning`) so that a Phase 3 artifact reloads with
`CognateForCausalLM.from_pretrained` whole; the algorithms that use them are in `forge.reasoning`.

Start/end embeddings are separate parameters, not rows of the token embedding: the embedding is
tied to `lm_head`, so learning those rows would also move the output logits of the two tokens
(the model would learn to emit them). Kept apart, training them changes no output distribution.

Mixing head (Quiet-STaR, arXiv 2403.09629, section 4.3): a small MLP on the concatenated
post-norm states without and with the thought gives w = sigmoid(MLP([h_base; h_thought])) in
(0, 1); the prediction is lm_head((1 - w) h_base + w h_thought). lm_head is linear with no bias,
so this is the paper's interpolation of the two logit vectors.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers import initialization as init


class ThoughtHead(nn.Module):
    """Start/end-of-thought embeddings (2, C) and the mixing MLP 2C -> hidden -> 1."""

    def __init__(self, d_model: int, hidden: int, mix_init: float) -> None:
        super().__init__()
        self.mix_init = mix_init
        self.start_end = nn.Parameter(torch.zeros(2, d_model))  # embedding units, like embed rows
        self.mix_in = nn.Linear(2 * d_model, hidden)
        self.mix_out = nn.Linear(hidden, 1)
        self.reset_thought_parameters()

    def reset_thought_parameters(self) -> None:
        """Zero start/end (set from a token by `forge.reasoning`), w = mix_init everywhere: the
        output layer starts at weight 0 and bias logit(mix_init)."""
        init.zeros_(self.start_end)
        init.zeros_(self.mix_out.weight)
        init.constant_(self.mix_out.bias, math.log(self.mix_init / (1 - self.mix_init)))

    def mix_weight(self, h_base: torch.Tensor, h_thought: torch.Tensor) -> torch.Tensor:
        """w (..., 1) in (0, 1) from h_base, h_thought (..., C)."""
        hidden = torch.relu(self.mix_in(torch.cat([h_base, h_thought], dim=-1)))
        return torch.sigmoid(self.mix_out(hidden))

    def mix(self, h_base: torch.Tensor,
            h_thought: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """((1 - w) h_base + w h_thought, w); shapes (..., C) and (..., 1)."""
        w = self.mix_weight(h_base, h_thought)
        return (1 - w) * h_base + w * h_thought, w
