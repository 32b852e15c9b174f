"""Parallel thoughts: a thought after every position of a sequence, sampled all at once.

Quiet-STaR (Zelikman et al., arXiv 2403.09629, sections 4.1-4.2). For a sequence x_0..x_{T-1}
every position t gets the branch

    <|startofthought|> th_1 .. th_L <|endofthought|> x_{t+1} .. x_{t+A-1}

laid out as `forge.models.branches.BranchLayout(T, L + 1 + A)`: slot 1 is the start token,
slots 2..L+1 the thought, slot L+2 the end token and the last A-1 slots the true next tokens
(teacher forcing, so the state after the thought is scored on A true tokens, the paper's
n_true). The state at slot L+2+k predicts x_{t+1+k}. Token th_j is sampled from the state at
slot j; with no KV cache, sampling costs one forward pass per thought token (all positions at
once), and a last pass with gradient scores the finished branches.

Every function takes `at`, the positions that get a thought (None: all T). Compute grows with the
number of branch tokens, so training and scoring put thoughts only where a next token is scored
(the answer of a task example); the branches at `at` are exactly those of the all-positions
layout (each branch sees only its own prefix and itself).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from forge.models import CognateForCausalLM
from forge.models.branches import BranchLayout


@dataclass
class ThoughtPass:
    """One forward pass with a thought at every position."""

    thoughts: torch.Tensor  # (B, P, L) thought token ids
    logp: torch.Tensor  # (B, P) sum over j of log p(th_j | prefix, th_<j)
    h_base: torch.Tensor  # (B, T, C) post-norm state without thought
    h_thought: torch.Tensor  # (B, P, A, C) state after the thought predicting x_{t+1+k}
    at: torch.Tensor  # (P,) the positions t that have a thought


Positions = tuple[int, ...] | None


def thought_layout(seq_len: int, thought_len: int, n_ahead: int,
                   at: Positions = None) -> BranchLayout:
    """Slots: start, L thought tokens, end, then A - 1 true tokens; branches at `at`."""
    return BranchLayout(seq_len, thought_len + 1 + n_ahead, at)


def require_thought_head(model: CognateForCausalLM) -> None:
    """ValueError when `model` has no Quiet-STaR parameters (config.thought_len == 0)."""
    if model.thoughts is None or model.config.thought_len < 1:
        raise ValueError("model has no thought head (config.thought_len is 0); add one with "
                         "forge.reasoning.add_thought_head")


def masked_logits(model: CognateForCausalLM, h: torch.Tensor,
                  banned: list[int] | None = None) -> torch.Tensor:
    """lm_head(h) (..., V) in float32, with the `banned` ids at -inf (default: the config's
    thought_banned_ids, the special tokens that may never appear inside a thought)."""
    logits = model.lm_head(h).float()  # (..., V)
    banned = model.config.thought_banned_ids if banned is None else banned
    if banned:
        logits[..., banned] = float("-inf")
    return logits


def branch_embeds(model: CognateForCausalLM, ids: torch.Tensor, thoughts: torch.Tensor,
                  n_ahead: int, layout: BranchLayout, close: bool = True) -> torch.Tensor:
    """Input embeddings (B, N, C) of [base ; start ; thought tokens ; (end ; true tokens)].

    thoughts (B, P, j). `close=False` stops after the thought tokens given (the passes that
    sample the next one). Start/end use the head's own embeddings, scaled like token
    embeddings (sqrt(C)).
    """
    embed, scale = model.model.embed, model.config.d_model ** 0.5
    B, T = ids.shape
    at = layout.branch_at(ids.device)  # (P,)
    start, end = (model.thoughts.start_end * scale).unbind(0)  # (C,) each
    blocks = [embed(ids), start.expand(B, len(at), -1)]
    blocks += [embed(thoughts[:, :, j]) for j in range(thoughts.shape[2])]
    if close:
        blocks.append(end.expand(B, len(at), -1))
        for k in range(1, n_ahead):  # x_{t+k}; past the end any id does, its targets are ignored
            blocks.append(embed(ids[:, (at + k).clamp(max=T - 1)]))
    return torch.cat(blocks, dim=1)


def pick_tokens(logits: torch.Tensor, temperature: float,
                generator: torch.Generator | None) -> torch.Tensor:
    """Sample from softmax(logits / temperature) (..., V) -> (...); temperature 0 is argmax."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])


@torch.no_grad()
def sample_thoughts(model: CognateForCausalLM, ids: torch.Tensor, thought_len: int,
                    temperature: float = 1.0, generator: torch.Generator | None = None,
                    at: Positions = None) -> torch.Tensor:
    """Thought tokens (B, P, L) at the positions `at`, token j from the pass over slots 1..j."""
    require_thought_head(model)
    B, T = ids.shape
    thoughts = ids.new_zeros(B, BranchLayout(T, 0, at).width, 0)
    for j in range(thought_len):
        layout = BranchLayout(T, j + 1, at)  # start + the j tokens so far
        h = model.output_states(branch_embeds(model, ids, thoughts, 1, layout, close=False),
                                layout)
        nxt = pick_tokens(masked_logits(model, layout.slot(h, j + 1)), temperature, generator)
        thoughts = torch.cat([thoughts, nxt[:, :, None]], dim=2)  # (B, T, j+1)
    return thoughts


def random_thoughts(model: CognateForCausalLM, shape: tuple[int, int, int],
                    generator: torch.Generator | None = None,
                    device: torch.device | None = None) -> torch.Tensor:
    """Thought tokens (B, P, L) drawn uniformly from the non-banned vocabulary: the control
    that shows whether the content of a thought matters or only the extra computation."""
    allowed = torch.ones(model.config.vocab_size, dtype=torch.bool)
    allowed[model.config.thought_banned_ids] = False
    pool = allowed.nonzero().flatten()  # (V',)
    pick = torch.randint(len(pool), shape, generator=generator)
    return pool[pick].to(device)


def run_thoughts(model: CognateForCausalLM, ids: torch.Tensor, thoughts: torch.Tensor,
                 n_ahead: int = 1, temperature: float = 1.0, at: Positions = None) -> ThoughtPass:
    """Score given thoughts: one pass over [base ; start ; thoughts ; end ; true tokens].

    Differentiable when grad is enabled. logp uses softmax(logits / temperature) (the sampling
    distribution; temperature 0 scores at temperature 1).
    """
    require_thought_head(model)
    B, T = ids.shape
    L = thoughts.shape[2]
    layout = thought_layout(T, L, n_ahead, at)
    h = model.output_states(branch_embeds(model, ids, thoughts, n_ahead, layout), layout)
    logp = ids.new_zeros(B, layout.width, dtype=torch.float)
    tau = temperature or 1.0
    for j in range(L):  # slot j + 1 (start, th_1, ...) predicts th_{j+1}
        logits = masked_logits(model, layout.slot(h, j + 1)) / tau  # (B, P, V)
        logp = logp + torch.log_softmax(logits, -1).gather(-1, thoughts[:, :, j:j + 1])[..., 0]
    h_thought = torch.stack([layout.slot(h, L + 2 + k) for k in range(n_ahead)], dim=2)
    return ThoughtPass(thoughts, logp, layout.slot(h, 0), h_thought, layout.branch_at(ids.device))
