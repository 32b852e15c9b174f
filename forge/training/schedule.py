"""Learning-rate schedule: linear warm-up, then cosine decay to a floor."""
from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, warmup: int, min_ratio: float = 0.1) -> float:
    """Multiplier of the base learning rate at `step` (0-based).

    lr(t) = t / warmup for t < warmup, then min_ratio + (1 - min_ratio) * (1 + cos(pi * p)) / 2
    with p = (t - warmup) / (total - warmup) (Loshchilov & Hutter, SGDR, arXiv 1608.03983).
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
