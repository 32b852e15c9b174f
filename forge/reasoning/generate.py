"""Generation that thinks: before each new token the model samples a thought at the last position,
mixes the post-thought prediction with its base one (Quiet-STaR, arXiv 2403.09629, section 4),
and emits the argmax. Thought tokens never enter the output or the context of later tokens:
the sequence fed back holds only the emitted tokens, and the start/end-of-thought ids are masked
out of the emitted distribution. `show_thoughts` returns them aside for inspection.

Rows are right-padded; causal attention and the diagonal branch mask keep padding out of every
real position. No KV cache: each new token costs thought_len + 1 forward passes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import torch

from forge.models import CognateForCausalLM
from forge.reasoning.mixing import mixed_predictions
from forge.reasoning.thoughts import random_thoughts, run_thoughts, sample_thoughts

ThoughtSource = Literal["sample", "random"]


@dataclass
class Generation:
    """Emitted token ids (eos excluded) and, per emitted token, the thought behind it."""

    tokens: list[int]
    thoughts: list[list[int]] = field(default_factory=list)


def next_token_logits(model: CognateForCausalLM, ids: torch.Tensor, lengths: torch.Tensor,
                      source: ThoughtSource, temperature: float,
                      generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixed logits (B, V) at each row's last real position and the thought used (B, L).
    Thoughts are drawn only at the rows' last positions (P <= B of them)."""
    L = model.config.thought_len
    at = tuple(sorted(set((lengths - 1).tolist())))
    if source == "sample":
        thoughts = sample_thoughts(model, ids, L, temperature, generator, at)  # (B, P, L)
    else:
        thoughts = random_thoughts(model, (ids.shape[0], len(at), L), generator, ids.device)
    _, mixed, _ = mixed_predictions(model, run_thoughts(model, ids, thoughts, 1, temperature, at))
    rows = torch.arange(ids.shape[0], device=ids.device)
    col = torch.searchsorted(torch.tensor(at, device=ids.device), lengths - 1)  # (B,) index in at
    logits = mixed[rows, col, 0]  # (B, V)
    c = model.config
    logits[:, [c.thought_start_id, c.thought_end_id]] = float("-inf")  # never emitted
    return logits, thoughts[rows, col]


@torch.no_grad()
def think_generate(model: CognateForCausalLM, prompts: Sequence[list[int]], max_new_tokens: int,
                   eos_id: int, pad_id: int, source: ThoughtSource = "sample",
                   temperature: float = 1.0, seed: int = 0) -> list[Generation]:
    """Greedy continuation of each prompt with a thought before every token (module docstring)."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("think_generate: every prompt needs at least one token")
    limit = model.config.max_seq_len - max_new_tokens
    prompts = [p[max(0, len(p) - limit):] for p in prompts]
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([len(p) for p in prompts], device=device)  # (B,)
    ids = torch.full((len(prompts), int(lengths.max()) + max_new_tokens), pad_id,
                     dtype=torch.long, device=device)  # (B, W_max)
    for row, p in enumerate(prompts):
        ids[row, :len(p)] = torch.as_tensor(p, device=device)
    out = [Generation([]) for _ in prompts]
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            width = int(lengths.max())
            logits, thought = next_token_logits(model, ids[:, :width], lengths, source,
                                                temperature, generator)
            nxt = logits.argmax(-1)  # (B,)
            for r in (~done).nonzero().flatten().tolist():
                if int(nxt[r]) != eos_id:
                    out[r].tokens.append(int(nxt[r]))
                    out[r].thoughts.append(thought[r].tolist())
                    ids[r, lengths[r]] = nxt[r]
            done |= nxt == eos_id
            lengths = lengths + (~done).long()
            if bool(done.all()):
                break
    finally:
        model.train(was_training)
    return out
