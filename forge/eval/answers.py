"""Answer log-likelihood: how many bits the model needs for the answer given the prompt.

For an example with prompt tokens p and answer tokens a (the answer text `" {answer}"` + eos):
    NLL = -sum_j ln p(a_j | p, a_<j)
    bits per answer byte = sum NLL / (ln 2 * sum UTF-8 bytes of the answer texts)
It moves long before exact match does at small scale, so selection uses it (DESIGN.md section 6).
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Sequence

from transformers import PreTrainedTokenizerFast

from forge.data.batching import encode_example
from forge.data.tasks import TaskExample
from forge.eval.scoring import context_limit, sequence_nll


def answer_nll(model: Any, tokenizer: PreTrainedTokenizerFast, examples: Sequence[TaskExample],
               batch_size: int = 16) -> list[float]:
    """NLL in nats of each example's answer tokens (and eos) given its prompt."""
    encoded = [encode_example(tokenizer, e, context_limit(model)) for e in examples]
    starts = [e.labels.index(next(t for t in e.labels if t != -100)) for e in encoded]
    return sequence_nll(model, [e.input_ids for e in encoded], starts, batch_size,
                        tokenizer.pad_token_id)


def answer_bytes(example: TaskExample) -> int:
    """UTF-8 bytes of the answer text the model must produce (leading space included)."""
    return len(example.completion.encode("utf-8"))


def bits_per_answer_byte(nats: Sequence[float], examples: Sequence[TaskExample]) -> float:
    """sum NLL / (ln 2 * sum answer bytes)."""
    return sum(nats) / (math.log(2) * sum(answer_bytes(e) for e in examples))


def answer_bits_per_byte(model: Any, tokenizer: PreTrainedTokenizerFast,
                         examples: Sequence[TaskExample], batch_size: int = 16) -> float:
    """Bits per answer byte over all `examples` (see module docstring)."""
    if not examples:
        raise ValueError("answer_bits_per_byte: no examples")
    return bits_per_answer_byte(answer_nll(model, tokenizer, examples, batch_size), examples)


def answer_bits_by_task(nats: Sequence[float], examples: Sequence[TaskExample]) -> dict[str, float]:
    """Bits per answer byte of each task, from per-example NLLs already computed."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        groups[e.task].append(i)
    return {task: bits_per_answer_byte([nats[i] for i in idx], [examples[i] for i in idx])
            for task, idx in groups.items()}
