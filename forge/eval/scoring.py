"""Summed next-token negative log-likelihood of token sequences under a causal LM, batched.

For a sequence x_0..x_{n-1} scored from position s >= 1 the result is
    NLL = -sum_{j=s}^{n-1} ln p(x_j | x_<j)     (nats)
Sequences are right-padded: in a causal model padding after position j cannot change the
prediction of x_j, so no attention mask is needed and any `model(input_ids).logits` model works.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F


def context_limit(model: Any) -> int | None:
    """The longest input the model accepts (HF config n_positions / max_position_embeddings)."""
    config = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter (CPU for parameter-free models)."""
    first = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return first.device if first is not None else torch.device("cpu")


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> torch.Tensor:
    """Right-pad token lists into a LongTensor (B, T_max)."""
    out = torch.full((len(seqs), max(len(s) for s in seqs)), pad_id, dtype=torch.long)
    for row, s in enumerate(seqs):
        out[row, :len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


@torch.no_grad()
def _batch_nll(model: Any, seqs: Sequence[Sequence[int]], starts: Sequence[int],
               pad_id: int) -> list[float]:
    ids = pad_batch(seqs, pad_id).to(model_device(model))            # (B, T)
    logits = model(ids).logits[:, :-1].float()                       # (B, T-1, V)
    nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")  # (B, T-1)
    pos = torch.arange(1, ids.shape[1], device=ids.device)           # target positions
    lengths = torch.tensor([len(s) for s in seqs], device=ids.device)
    first = torch.tensor(list(starts), device=ids.device)
    keep = (pos[None, :] >= first[:, None]) & (pos[None, :] < lengths[:, None])
    return (nll * keep).sum(dim=1).tolist()


def sequence_nll(model: Any, seqs: Sequence[Sequence[int]], starts: Sequence[int],
                 batch_size: int, pad_id: int) -> list[float]:
    """NLL in nats of tokens starts[i].. of each sequence, in the input order."""
    if any(s < 1 for s in starts):
        raise ValueError("sequence_nll: scoring starts at position 1 or later (x_0 has no context)")
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        out: list[float] = []
        for i in range(0, len(seqs), batch_size):
            out += _batch_nll(model, seqs[i:i + batch_size], starts[i:i + batch_size], pad_id)
        return out
    finally:
        model.train(was_training)
