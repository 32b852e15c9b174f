"""Does a model read its context? Three probes (DESIGN.md section 6, "a model can look trained").

- Prompt swap: each answer's log-likelihood after its own prompt vs after the prompt of another
  question of the same task. A model that ignores the question scores both alike:
      gain_i = (NLL(a_i | p_swap(i)) - NLL(a_i | p_i)) / (ln 2 * bytes(a_i))   bits per answer byte
  reported as the mean over examples with its standard error.
- Copy task: sequences [a_1..a_L, a_1..a_L] of random ids; the loss on the second half falls from
  ln V (chance) to ~0 only if the model attends back L positions. A learning probe: train a fresh
  model a few hundred steps and read the held-out loss.
- Attention entropy: per layer, the entropy of each query's attention distribution divided by
  ln(number of keys it may see); 1.0 is uniform attention (nothing is singled out).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerFast

from forge.data.tasks import TaskExample
from forge.eval.answers import answer_bytes, answer_nll

IGNORE_INDEX = -100


@dataclass(frozen=True)
class SwapGain:
    """Mean and standard error of the prompt-swap gain (bits per answer byte), n examples."""

    mean: float
    stderr: float
    n: int

    @property
    def z(self) -> float:
        """Standard errors above zero."""
        return self.mean / self.stderr if self.stderr > 0 else float("inf") * (self.mean > 0)


def swapped(examples: Sequence[TaskExample]) -> list[TaskExample]:
    """Each example with the question of the next example of its own task (a cyclic shift per
    task, so every prompt is used once); tasks with one example are left out."""
    by_task: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by_task.setdefault(e.task, []).append(i)
    out: list[TaskExample | None] = [None] * len(examples)
    for idx in by_task.values():
        if len(idx) < 2:
            continue
        for k, i in enumerate(idx):
            donor = examples[idx[(k + 1) % len(idx)]]
            out[i] = TaskExample(examples[i].task, donor.question, examples[i].answer,
                                 examples[i].entry)
    return [e for e in out if e is not None]


def prompt_swap_gain(model: Any, tokenizer: PreTrainedTokenizerFast,
                     examples: Sequence[TaskExample], batch_size: int = 16) -> SwapGain:
    """Bits per answer byte the own prompt saves over another question's prompt (see above)."""
    kept = [e for e in examples if sum(x.task == e.task for x in examples) > 1]
    if len(kept) < 2:
        raise ValueError("prompt_swap_gain: needs at least two examples of one task")
    own = answer_nll(model, tokenizer, kept, batch_size)
    other = answer_nll(model, tokenizer, swapped(kept), batch_size)
    gains = torch.tensor([(o - s) / (math.log(2) * answer_bytes(e))
                          for s, o, e in zip(own, other, kept)], dtype=torch.float64)
    stderr = float(gains.std(unbiased=True) / math.sqrt(len(gains)))
    return SwapGain(float(gains.mean()), stderr, len(gains))


def copy_batch(batch: int, length: int, vocab: int, generator: torch.Generator,
               offset: int = 0) -> dict[str, torch.Tensor]:
    """[a_1..a_L, a_1..a_L] with ids in [offset, offset + vocab); labels only on the copy."""
    a = torch.randint(vocab, (batch, length), generator=generator) + offset
    ids = torch.cat([a, a], dim=1)  # (B, 2L)
    labels = ids.clone()
    labels[:, :length] = IGNORE_INDEX  # position t predicts labels[t+1]: the copy's tokens
    return {"input_ids": ids, "labels": labels}


@dataclass(frozen=True)
class CopyProbe:
    """Held-out copy loss (nats per copied token) after each block of steps; chance = ln(vocab)."""

    losses: dict[int, float]
    chance: float
    seconds: float

    @property
    def final(self) -> float:
        return self.losses[max(self.losses)]


def copy_loss(model: Any, batch: dict[str, torch.Tensor]) -> float:
    """Mean next-token CE on the copy half, in nats (eval mode, no gradient)."""
    was = model.training
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"]).logits[:, :-1].float()  # (B, 2L-1, V)
    model.train(was)
    return float(F.cross_entropy(logits.transpose(1, 2), batch["labels"][:, 1:],
                                 ignore_index=IGNORE_INDEX))


def copy_task_probe(model: Any, step: Callable[[dict[str, torch.Tensor]], None], steps: int,
                    batch: int = 32, length: int = 8, vocab: int = 64, offset: int = 0,
                    every: int = 50, seed: int = 0) -> CopyProbe:
    """Train `model` on fresh copy batches with `step(batch)` (one optimizer step of the caller's
    loop) and score a fixed held-out batch every `every` steps."""
    import time

    train_gen = torch.Generator().manual_seed(seed)
    held_out = copy_batch(128, length, vocab, torch.Generator().manual_seed(seed + 10_007), offset)
    losses, started = {}, time.perf_counter()
    for s in range(1, steps + 1):
        step(copy_batch(batch, length, vocab, train_gen, offset))
        if s % every == 0 or s == steps:
            losses[s] = copy_loss(model, held_out)
    return CopyProbe(losses, math.log(vocab), time.perf_counter() - started)


def attention_entropy(model: Any, input_ids: torch.Tensor) -> list[float]:
    """Normalised attention entropy of every MAG block (mean over batch, heads and queries with
    at least two visible keys), from one eval forward pass of `input_ids` (B, T)."""
    from forge.models.attention import SlidingWindowAttention

    records: dict[int, list[float]] = {}

    def hook(index: int):
        def capture(module, args, kwargs, _out):
            x, cos, sin = args[:3]
            records.setdefault(index, []).append(_entropy(module, x, cos, sin, kwargs["allowed"]))
        return capture

    attns = [m for m in model.modules() if isinstance(m, SlidingWindowAttention)]
    handles = [a.register_forward_hook(hook(i), with_kwargs=True) for i, a in enumerate(attns)]
    try:
        was = model.training
        model.eval()
        with torch.no_grad():
            model(input_ids=input_ids)
        model.train(was)
    finally:
        for h in handles:
            h.remove()
    return [sum(v) / len(v) for _, v in sorted(records.items())]


def _entropy(attn: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
             allowed: torch.Tensor) -> float:
    p = attn.logits(x, cos, sin, allowed).softmax(-1)  # (B, nh, T, T)
    h = -(p * p.clamp_min(1e-12).log()).sum(-1)  # (B, nh, T) nats
    visible = allowed.sum(-1).float()  # (T,)
    keep = visible > 1
    return float((h[..., keep] / visible[keep].log()).mean())
