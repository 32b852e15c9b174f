"""Batched greedy decoding straight from logits (no dependence on `generate()` specifics).

Rows are right-padded; at each step every unfinished row takes argmax of the logits at its own
last real position and writes the token after it. In a causal model padding to the right of a
position cannot change that position's logits, so no attention mask is needed.

A Cognate model decodes a batch whose prompts have one length with its KV cache
(`forge.models.cache`): the prompts are read once, then one token per row per step. Batches of
mixed lengths (and other models) re-read the prefix every step.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from forge.eval.scoring import context_limit, model_device


def _cacheable(model: Any, prompts: Sequence[list[int]]) -> bool:
    config = getattr(model, "config", None)
    return getattr(config, "model_type", None) == "cognate" and len({len(p) for p in prompts}) == 1


@torch.no_grad()
def _greedy_cached(model: Any, prompts: Sequence[list[int]], max_new_tokens: int,
                   eos_id: int) -> list[list[int]]:
    """Equal-length prompts through the KV cache; finished rows decode on and are cut after."""
    ids = torch.tensor(list(prompts), dtype=torch.long, device=model_device(model))  # (B, T)
    out = model(ids, use_cache=True)
    gen, done = [], torch.zeros(len(prompts), dtype=torch.bool, device=ids.device)
    for step in range(max_new_tokens):
        nxt = out.logits[:, -1].argmax(dim=-1)  # (B,)
        gen.append(torch.where(done, eos_id, nxt))
        done |= nxt == eos_id
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        out = model(nxt[:, None], cache=out.cache)
    rows = torch.stack(gen, 1).tolist()  # (B, steps)
    return [r[:r.index(eos_id)] if eos_id in r else r for r in rows]


@torch.no_grad()
def _greedy_batch(model: Any, prompts: Sequence[list[int]], max_new_tokens: int, eos_id: int,
                  pad_id: int) -> list[list[int]]:
    device = model_device(model)
    lengths = torch.tensor([len(p) for p in prompts], device=device)          # (B,)
    ids = torch.full((len(prompts), int(lengths.max()) + max_new_tokens), pad_id,
                     dtype=torch.long, device=device)                          # (B, T_max)
    for row, p in enumerate(prompts):
        ids[row, :len(p)] = torch.as_tensor(p, device=device)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    rows = torch.arange(len(prompts), device=device)
    for _ in range(max_new_tokens):
        width = int(lengths.max())
        logits = model(ids[:, :width]).logits                                  # (B, width, V)
        nxt = logits[rows, lengths - 1].argmax(dim=-1)                         # (B,)
        ids[rows[~done], lengths[~done]] = nxt[~done]
        done |= nxt == eos_id
        lengths = lengths + (~done).long()
        if bool(done.all()):
            break
    return [ids[r, len(p):int(lengths[r])].tolist() for r, p in enumerate(prompts)]


def greedy_generate(model: Any, prompts: Sequence[list[int]], max_new_tokens: int, eos_id: int,
                    pad_id: int, batch_size: int = 16) -> list[list[int]]:
    """Greedy continuation of each prompt, eos excluded, at most `max_new_tokens` tokens.
    Prompts longer than the model's context lose tokens from their start."""
    limit = context_limit(model)
    if limit is not None:
        prompts = [p[max(0, len(p) + max_new_tokens - limit):] for p in prompts]
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        out: list[list[int]] = []
        for i in range(0, len(prompts), batch_size):
            batch = prompts[i:i + batch_size]
            out += (_greedy_cached(model, batch, max_new_tokens, eos_id)
                    if _cacheable(model, batch) else
                    _greedy_batch(model, batch, max_new_tokens, eos_id, pad_id))
        return out
    finally:
        model.train(was_training)
