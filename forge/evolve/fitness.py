"""Fitness of one candidate: a weighted sum of its validation metrics, higher is better.

    fitness = - answer   * tasks/answer_bits_per_byte      (bits per answer byte, lower is better)
              - text     * text/bits_per_byte              (bits per held-out text byte)
              + accuracy * tasks/exact_match               (fraction in [0, 1])

DESIGN.md section 6: at the default scale exact match moves little, so the answer
log-likelihood (as bits per answer byte) carries most of the signal; the weights come from
config. Metric names are those of `forge.eval.evaluate`. The metrics must come from the
validation split, never the test split (the caller's job: this function only sees numbers).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from forge.config.schema import ConfigError, option

ANSWER_METRIC = "tasks/answer_bits_per_byte"
TEXT_METRIC = "text/bits_per_byte"
ACCURACY_METRIC = "tasks/exact_match"


@dataclass(frozen=True)
class FitnessWeights:
    """The weights of the three validation metrics in the fitness sum."""

    answer: float = option(1.0, "Weight of -tasks/answer_bits_per_byte.", ge=0)
    text: float = option(1.0, "Weight of -text/bits_per_byte.", ge=0)
    accuracy: float = option(1.0, "Weight of +tasks/exact_match.", ge=0)

    def __post_init__(self) -> None:
        self.check("FitnessWeights")

    def check(self, path: str) -> None:
        """ConfigError (a ValueError) naming a weight that is not a finite number >= 0, or all 0."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{path}.{f.name}: got {value!r}; allowed: a finite number >= 0")
        if self.answer == self.text == self.accuracy == 0:
            raise ConfigError(f"{path}: answer, text and accuracy are all 0; allowed: at least "
                              "one > 0")


def fitness(metrics: Mapping[str, float], weights: FitnessWeights | None = None) -> float:
    """-answer * answer_bpb - text * text_bpb + accuracy * exact_match (see module docstring).

    A metric with a non-zero weight that is missing raises ValueError naming it; one that is NaN
    makes the fitness -inf (a broken candidate ranks last instead of poisoning the sort). Metrics
    with weight 0 are not read.
    """
    weights = weights or FitnessWeights()
    terms = ((ANSWER_METRIC, -weights.answer), (TEXT_METRIC, -weights.text),
             (ACCURACY_METRIC, weights.accuracy))
    total = 0.0
    for name, weight in terms:
        if weight == 0:
            continue
        if name not in metrics:
            raise ValueError(f"metrics: missing {name!r} (its fitness weight is {abs(weight)}); "
                             f"got {sorted(metrics)}")
        value = float(metrics[name])
        if math.isnan(value):
            return -math.inf
        total += weight * value
    return -math.inf if math.isnan(total) else total
