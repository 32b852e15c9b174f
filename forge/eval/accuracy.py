"""Exact-match accuracy by greedy generation, scored by reasoning-gym, with a Wilson interval.

An example counts as correct when the task's own `score_answer` gives 1.0 to the generated text.
The 95% interval is Wilson's score interval (Wilson 1927), which stays inside [0, 1] and behaves at
p = 0 or 1 and small n, unlike the normal approximation:
    centre    = (p + z^2 / 2n) / (1 + z^2 / n)
    half      = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)
    interval  = [centre - half, centre + half],   z = 1.96 for 95%
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from transformers import PreTrainedTokenizerFast

from forge.data.tasks import TaskExample, score
from forge.eval.generate import greedy_generate

Z_95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class Accuracy:
    """Exact-match accuracy with its sample size, 95% Wilson interval and mean partial score."""

    correct: int
    n: int
    low: float
    high: float
    mean_score: float

    @property
    def accuracy(self) -> float:
        """correct / n."""
        return self.correct / self.n


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion successes / n (formula in module doc)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"wilson_interval: need 0 <= successes <= n and n > 0, got {successes}/{n}")
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)   # exact bounds at p = 0 and p = 1
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def accuracy_of(examples: Sequence[TaskExample], predictions: Sequence[str]) -> Accuracy:
    """Score each prediction with its task's `score_answer`; correct means a score of 1.0."""
    if not examples or len(examples) != len(predictions):
        raise ValueError(f"accuracy_of: {len(examples)} examples, {len(predictions)} predictions")
    scores = [score(e, p) for e, p in zip(examples, predictions)]
    correct = sum(s >= 1.0 for s in scores)
    low, high = wilson_interval(correct, len(scores))
    return Accuracy(correct, len(scores), low, high, sum(scores) / len(scores))


def accuracy_by_task(examples: Sequence[TaskExample],
                     predictions: Sequence[str]) -> dict[str, Accuracy]:
    """`accuracy_of` for each task separately, in first-seen task order."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        groups[e.task].append(i)
    return {t: accuracy_of([examples[i] for i in idx], [predictions[i] for i in idx])
            for t, idx in groups.items()}


def generate_answers(model: Any, tokenizer: PreTrainedTokenizerFast,
                     examples: Sequence[TaskExample], max_new_tokens: int,
                     batch_size: int = 16) -> list[str]:
    """Greedy answer text for each example's prompt (stops at eos or `max_new_tokens`)."""
    prompts = [tokenizer.encode(e.prompt, add_special_tokens=False) for e in examples]
    out = greedy_generate(model, prompts, max_new_tokens, tokenizer.eos_token_id,
                          tokenizer.pad_token_id, batch_size)
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in out]


def exact_match(model: Any, tokenizer: PreTrainedTokenizerFast, examples: Sequence[TaskExample],
                max_new_tokens: int, batch_size: int = 16) -> Accuracy:
    """Exact-match accuracy of greedy answers over `examples`, with n and the 95% interval."""
    predictions = generate_answers(model, tokenizer, examples, max_new_tokens, batch_size)
    return accuracy_of(examples, predictions)
