"""Batches for training: packed language-modelling windows and answer-masked task examples.

Everything runs in the calling process (no DataLoader workers, so nothing leaks) and the order
depends only on the seed given.

    ids = encode_documents(tok, corpus.train)                       # one stream, eos between docs
    for batch in lm_batches(ids, seq_len=128, batch_size=8, seed=0):  # LongTensor (B, T+1)
        inputs, targets = batch[:, :-1], batch[:, 1:]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from transformers import PreTrainedTokenizerFast

from forge.data.errors import DataError
from forge.data.tasks import TaskExample

IGNORE_INDEX = -100  # labels here add nothing to torch / HF cross-entropy


def encode_documents(tokenizer: PreTrainedTokenizerFast, docs: Sequence[str]) -> list[int]:
    """One token stream: each document's ids followed by eos (documents never run together)."""
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for ids in tokenizer(list(docs), add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(eos)
    return stream


def lm_windows(token_ids: Sequence[int], seq_len: int) -> torch.Tensor:
    """Non-overlapping windows of T + 1 tokens with stride T: (N, T+1); every token is a target
    exactly once except the first. A tail shorter than T + 1 is dropped."""
    ids = torch.as_tensor(token_ids, dtype=torch.long)
    n = (len(ids) - 1) // seq_len
    if n < 1:
        raise DataError(f"batching: {len(ids)} tokens cannot fill one window of {seq_len + 1}")
    return ids.unfold(0, seq_len + 1, seq_len)[:n]  # (N, T+1)


def lm_batches(token_ids: Sequence[int], seq_len: int, batch_size: int,
               seed: int) -> Iterator[torch.Tensor]:
    """One epoch of packed windows in a seeded random order, as LongTensor (B, T+1) batches;
    inputs = batch[:, :-1], targets = batch[:, 1:]. The last batch may be smaller."""
    windows = lm_windows(token_ids, seq_len)
    order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(seed))
    for start in range(0, len(order), batch_size):
        yield windows[order[start:start + batch_size]]


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of prompt + answer + eos, and labels that are -100 outside the answer."""

    input_ids: list[int]
    labels: list[int]


def encode_example(tokenizer: PreTrainedTokenizerFast, example: TaskExample,
                   max_len: int | None = None) -> EncodedExample:
    """Prompt and answer are tokenized apart and joined, so the answer boundary is exact; when
    longer than `max_len`, the prompt loses tokens from its start (the answer is kept whole)."""
    prompt = tokenizer.encode(example.prompt, add_special_tokens=False)
    answer = tokenizer.encode(example.completion, add_special_tokens=False)
    answer.append(tokenizer.eos_token_id)
    if max_len is not None:
        if len(answer) >= max_len:
            raise DataError(f"batching: a {example.task} answer has {len(answer)} tokens, "
                            f"more than max_len {max_len}")
        prompt = prompt[max(0, len(prompt) + len(answer) - max_len):]
    return EncodedExample(prompt + answer, [IGNORE_INDEX] * len(prompt) + answer)


def collate(encoded: Sequence[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest: input_ids, labels (-100 on padding), attention_mask; all (B, T).
    Labels line up with input_ids (HF convention: the model shifts them by one)."""
    width = max(len(e.input_ids) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, e in enumerate(encoded):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def task_batches(tokenizer: PreTrainedTokenizerFast, examples: Sequence[TaskExample],
                 batch_size: int, seed: int,
                 max_len: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """One epoch of answer-masked task batches in a seeded random order (see `collate`)."""
    if not examples:
        raise DataError("batching: no task examples")
    encoded = [encode_example(tokenizer, e, max_len) for e in examples]
    order = torch.randperm(len(encoded), generator=torch.Generator().manual_seed(seed)).tolist()
    for start in range(0, len(order), batch_size):
        yield collate([encoded[i] for i in order[start:start + batch_size]],
                      tokenizer.pad_token_id)
