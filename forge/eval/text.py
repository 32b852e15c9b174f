"""Perplexity and bits per byte of held-out text.

Each document is scored as [eos] + tokens + [eos] (eos is also the context before a document in
training streams), cut into windows of T + 1 tokens with stride T so every token after the first is
predicted exactly once. With N scored tokens, B UTF-8 bytes and total NLL in nats:
    perplexity    = exp(NLL / N)
    bits per byte = NLL / (ln 2 * B)        (tokenizer-independent: compares vocabularies)
A uniform model over V tokens has perplexity exactly V.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from transformers import PreTrainedTokenizerFast

from forge.eval.scoring import context_limit, sequence_nll


@dataclass(frozen=True)
class TextNLL:
    """Total NLL (nats), scored tokens and UTF-8 bytes of a set of documents."""

    nats: float
    tokens: int
    bytes: int

    @property
    def perplexity(self) -> float:
        """exp(NLL / tokens)."""
        return math.exp(self.nats / self.tokens)

    @property
    def bits_per_byte(self) -> float:
        """NLL / (ln 2 * bytes)."""
        return self.nats / (math.log(2) * self.bytes)


def windows(ids: Sequence[int], seq_len: int) -> list[list[int]]:
    """Windows ids[k*T : k*T + T + 1]: consecutive windows share one token (the context)."""
    return [list(ids[k:k + seq_len + 1]) for k in range(0, max(len(ids) - 1, 1), seq_len)]


def text_nll(model: Any, tokenizer: PreTrainedTokenizerFast, texts: Sequence[str], seq_len: int,
             batch_size: int = 16) -> TextNLL:
    """NLL of every token of every text (and its closing eos), with token and byte counts."""
    if not texts:
        raise ValueError("text_nll: no texts to score")
    limit = context_limit(model)
    seq_len = min(seq_len, limit - 1) if limit else seq_len
    eos = tokenizer.eos_token_id
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    chunks = [w for ids in encoded for w in windows([eos] + ids + [eos], seq_len)]
    nats = sum(sequence_nll(model, chunks, [1] * len(chunks), batch_size, tokenizer.pad_token_id))
    tokens = sum(len(ids) + 1 for ids in encoded)
    return TextNLL(nats, tokens, sum(len(t.encode("utf-8")) for t in texts))


def perplexity(model: Any, tokenizer: PreTrainedTokenizerFast, texts: Sequence[str],
               seq_len: int, batch_size: int = 16) -> float:
    """exp(total NLL / scored tokens) over `texts` (see module docstring)."""
    return text_nll(model, tokenizer, texts, seq_len, batch_size).perplexity


def bits_per_byte(model: Any, tokenizer: PreTrainedTokenizerFast, texts: Sequence[str],
                  seq_len: int, batch_size: int = 16) -> float:
    """Total NLL in bits / UTF-8 bytes = sum NLL / (ln 2 * bytes) over `texts`."""
    return text_nll(model, tokenizer, texts, seq_len, batch_size).bits_per_byte
