"""Scoring task answers three ways: (a) thinking, (b) thoughts off, (c) random thoughts.

The anti-theater check of Quiet-STaR (DESIGN.md section 5, Phase 3): if thoughts help, (a) must
beat (b), which runs the same weights on the plain causal-LM path, and (c), which keeps every
extra forward computation, the start/end tokens and the mixing head but replaces the thought
tokens by uniform random ones of the same length. Teacher-forced answer NLL with the same
definitions as `forge.eval.answers`:

    bits per answer byte = sum_examples NLL(answer + eos | prompt) / (ln 2 * sum answer bytes)
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
from transformers import PreTrainedTokenizerFast

from forge.data.batching import collate, encode_example
from forge.data.tasks import TaskExample, score
from forge.eval.answers import answer_bytes, bits_per_answer_byte
from forge.eval.generate import greedy_generate
from forge.models import CognateForCausalLM
from forge.models.act import shift_labels
from forge.reasoning.generate import think_generate
from forge.reasoning.losses import token_nll
from forge.reasoning.mixing import mixed_predictions
from forge.reasoning.thoughts import random_thoughts, run_thoughts, sample_thoughts

Mode = Literal["think", "off", "random"]
MODES: tuple[Mode, ...] = ("think", "off", "random")


def mode_logits(model: CognateForCausalLM, ids: torch.Tensor, targets: torch.Tensor, mode: Mode,
                temperature: float,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token logits (B, T, V) under `mode` and the mixing weights (B, T) (0 when off).

    Thoughts are drawn at the positions that predict a target (targets (B, T) != -100); the
    other positions keep the base logits, which score nothing."""
    logits = model(ids).logits.float()  # (B, T, V): the plain causal-LM path
    w_full = torch.zeros(ids.shape, device=ids.device)
    if mode == "off":
        return logits, w_full
    if mode not in MODES:
        raise ValueError(f"mode: got {mode!r}; allowed: {', '.join(MODES)}")
    at = tuple((targets >= 0).any(0).nonzero().flatten().tolist())
    if not at:
        return logits, w_full
    L = model.config.thought_len
    if mode == "think":
        thoughts = sample_thoughts(model, ids, L, temperature, generator, at)
    else:
        thoughts = random_thoughts(model, (ids.shape[0], len(at), L), generator, ids.device)
    tp = run_thoughts(model, ids, thoughts, 1, temperature, at)
    _, mixed, w = mixed_predictions(model, tp)
    logits[:, tp.at], w_full[:, tp.at] = mixed[:, :, 0], w[:, :, 0]
    return logits, w_full


@torch.no_grad()
def answer_nats(model: CognateForCausalLM, tokenizer: PreTrainedTokenizerFast,
                examples: Sequence[TaskExample], mode: Mode, temperature: float = 1.0,
                seed: int = 0, batch_size: int = 16) -> tuple[list[float], float]:
    """NLL in nats of each example's answer (and eos) under `mode`, and the mean mixing weight
    over answer positions (0 when off). Thoughts are drawn from a generator seeded by `seed`."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    enc = [encode_example(tokenizer, e, model.config.max_seq_len) for e in examples]
    # Batches of equal prompt length: answers aligned, so few positions need a thought.
    order = sorted(range(len(enc)), key=lambda i: enc[i].labels.count(-100))
    nats = [0.0] * len(enc)
    w_sum, w_count = 0.0, 0
    for i in range(0, len(order), batch_size):
        rows = order[i:i + batch_size]
        batch = collate([enc[r] for r in rows], tokenizer.pad_token_id)
        ids, targets = batch["input_ids"].to(device), shift_labels(batch["labels"]).to(device)
        logits, w = mode_logits(model, ids, targets, mode, temperature, generator)
        for r, value in zip(rows, token_nll(logits, targets).sum(1).tolist()):
            nats[r] = value
        valid = targets >= 0
        w_sum, w_count = w_sum + float(w[valid].sum()), w_count + int(valid.sum())
    return nats, (w_sum / w_count if w_count else float("nan"))


def answer_bits(model: CognateForCausalLM, tokenizer: PreTrainedTokenizerFast,
                examples: Sequence[TaskExample], mode: Mode, temperature: float = 1.0,
                seed: int = 0, batch_size: int = 16) -> dict[str, float]:
    """{"bits_per_byte", "nats_per_example", "mix_w"} of `examples` under `mode`."""
    return bits_summary(*answer_nats_checked(model, tokenizer, examples, mode, temperature, seed,
                                             batch_size), examples)


def answer_nats_checked(model: CognateForCausalLM, tokenizer: PreTrainedTokenizerFast,
                        examples: Sequence[TaskExample], mode: Mode, temperature: float = 1.0,
                        seed: int = 0, batch_size: int = 16) -> tuple[list[float], float]:
    """`answer_nats`, refusing an empty example list."""
    if not examples:
        raise ValueError("answer_bits: no examples")
    return answer_nats(model, tokenizer, examples, mode, temperature, seed, batch_size)


def bits_summary(nats: list[float], w: float, examples: Sequence[TaskExample]) -> dict[str, float]:
    """{"bits_per_byte", "nats_per_example", "mix_w"} from per-example NLLs."""
    return {"bits_per_byte": bits_per_answer_byte(nats, examples),
            "nats_per_example": sum(nats) / len(nats), "mix_w": w}


def paired_gain(nats_ref: Sequence[float], nats_new: Sequence[float],
                examples: Sequence[TaskExample]) -> tuple[float, float]:
    """(gain, standard error) in bits per answer byte of `new` over `ref` on the same examples:
    gain = sum_i (ref_i - new_i) / (ln 2 * bytes), SE from the per-example differences
    (sqrt(n) * std(d) / (ln 2 * bytes)); > 0 means `new` needs fewer bits."""
    d = torch.tensor(nats_ref, dtype=torch.float64) - torch.tensor(nats_new, dtype=torch.float64)
    scale = math.log(2) * sum(answer_bytes(e) for e in examples)
    se = float(d.std() * math.sqrt(len(d))) / scale if len(d) > 1 else float("nan")
    return float(d.sum()) / scale, se


def exact_match(model: CognateForCausalLM, tokenizer: PreTrainedTokenizerFast,
                examples: Sequence[TaskExample], mode: Mode, max_new_tokens: int,
                temperature: float = 1.0, seed: int = 0) -> float:
    """Mean task score of greedy answers generated under `mode` (thoughts never in the text)."""
    if not examples:
        return float("nan")
    prompts = [tokenizer.encode(e.prompt, add_special_tokens=False) for e in examples]
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    if mode == "off":
        outs = greedy_generate(model, prompts, max_new_tokens, eos, pad)
    else:  # one batch per prompt length: rows stay aligned, one thought position per step
        source = "sample" if mode == "think" else "random"
        outs = [[] for _ in prompts]
        for n in sorted({len(p) for p in prompts}):
            rows = [i for i, p in enumerate(prompts) if len(p) == n]
            gens = think_generate(model, [prompts[i] for i in rows], max_new_tokens, eos, pad,
                                  source, temperature, seed)
            for i, g in zip(rows, gens):
                outs[i] = g.tokens
    texts = tokenizer.batch_decode(outs, skip_special_tokens=True)
    return sum(score(e, t) for e, t in zip(examples, texts)) / len(examples)
