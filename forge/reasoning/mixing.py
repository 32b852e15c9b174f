"""The mixing head in use, and how a plain Cognate model gets its Quiet-STaR parameters.

Quiet-STaR (arXiv 2403.09629, section 4.3): the prediction of x_{t+1+k} after the thought at t is

    w      = sigmoid(MLP([h_base(t+k) ; h_thought(t, k)]))          in (0, 1)
    logits = lm_head((1 - w) h_base(t+k) + w h_thought(t, k))

where h_base(t+k) is the state without any thought that predicts the same token. The states are
post-norm and lm_head is linear without bias, so this interpolates the two logit vectors, as the
paper does; early in training w is small and the model leans on its base prediction.
"""
from __future__ import annotations

import torch

from forge.models import CognateConfig, CognateForCausalLM
from forge.reasoning.thoughts import ThoughtPass, masked_logits

THOUGHT_PREFIX = "thoughts."  # state-dict keys of the head


def mixed_predictions(model: CognateForCausalLM,
                      tp: ThoughtPass) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(base logits (B, T, V), mixed logits (B, P, A, V), mixing weights w (B, P, A)).

    Mixed logits [p, k] predict x_{t+1+k} for t = tp.at[p]: the thought at t, then k true
    tokens; mixed with the base state at t + k (clamped at the end, where nothing is scored).
    """
    A, T = tp.h_thought.shape[2], tp.h_base.shape[1]
    rows = (tp.at[:, None] + torch.arange(A, device=tp.at.device)).clamp(max=T - 1)  # (P, A)
    base = tp.h_base[:, rows]  # (B, P, A, C)
    mixed, w = model.thoughts.mix(base, tp.h_thought)  # (B, P, A, C), (B, P, A, 1)
    return masked_logits(model, tp.h_base, []), masked_logits(model, mixed, []), w[..., 0]


def thought_config(config: CognateConfig, thought_len: int, mixer_hidden: int | None,
                   mix_init: float, start_id: int, end_id: int,
                   banned_ids: list[int]) -> CognateConfig:
    """A copy of `config` with the Quiet-STaR fields set."""
    fields = config.to_dict()
    fields.update(thought_len=thought_len, thought_mixer_hidden=mixer_hidden,
                  thought_mix_init=mix_init, thought_start_id=start_id, thought_end_id=end_id,
                  thought_banned_ids=sorted(set(banned_ids)))
    return CognateConfig.from_dict(fields)


def add_thought_head(model: CognateForCausalLM, config: CognateConfig, init_token_id: int,
                     init_scale: float) -> CognateForCausalLM:
    """A new model with `model`'s weights plus a fresh thought head built from `config`.

    The start and end embeddings both start as init_scale * embedding[init_token_id] (the paper
    starts them from the "---" embedding); the mixing head starts at w = config.thought_mix_init.
    """
    if not 0 <= init_token_id < config.vocab_size:
        raise ValueError(f"add_thought_head: init token id {init_token_id} is outside the "
                         f"vocabulary [0, {config.vocab_size})")
    fresh = CognateForCausalLM(config)
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith(THOUGHT_PREFIX) for k in missing):
        raise ValueError(f"add_thought_head: state dicts differ beyond the thought head "
                         f"(missing {missing}, unexpected {unexpected})")
    with torch.no_grad():
        row = fresh.model.embed_tokens.weight[init_token_id]
        fresh.thoughts.start_end.copy_(init_scale * row.expand(2, -1))
    return fresh.to(next(model.parameters()).device)
