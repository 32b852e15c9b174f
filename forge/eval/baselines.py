"""Reference points that need no model: a character-level unigram model of the training text.

With counts c(x) of each Unicode character x in the training text (N characters, K distinct) and
add-one (Laplace) smoothing over the K seen characters plus one slot shared by unseen ones:
    p(x) = (c(x) + 1) / (N + K + 1)
    bits per byte = -sum_{x in eval} log2 p(x) / UTF-8 bytes of eval
A model that does not beat this has learned less than letter frequencies.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Sequence


def unigram_bits_per_byte(train_texts: Sequence[str], eval_texts: Sequence[str]) -> float:
    """Bits per UTF-8 byte of `eval_texts` under the smoothed character unigram of `train_texts`."""
    counts = Counter(ch for t in train_texts for ch in t)
    denom = sum(counts.values()) + len(counts) + 1
    eval_counts = Counter(ch for t in eval_texts for ch in t)
    n_bytes = sum(len(t.encode("utf-8")) for t in eval_texts)
    if n_bytes == 0:
        raise ValueError("unigram_bits_per_byte: no evaluation text")
    bits = sum(n * -math.log2((counts.get(ch, 0) + 1) / denom) for ch, n in eval_counts.items())
    return bits / n_bytes
