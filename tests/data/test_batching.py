"""Batching: packed windows cover the stream once in seeded order; task labels mask the prompt."""
from __future__ import annotations

import pytest
import torch

from forge.data.batching import (IGNORE_INDEX, encode_documents, encode_example, lm_batches,
                                 lm_windows, task_batches)
from forge.data.errors import DataError
from tests.data.fixtures import corpus, tasks, tokenizer


def _stream() -> list[int]:
    return encode_documents(tokenizer(), corpus().train[:200])


def test_stream_ends_each_document_with_eos():
    tok = tokenizer()
    docs = corpus().train[:3]
    stream = encode_documents(tok, docs)
    assert stream.count(tok.eos_token_id) == 3 and stream[-1] == tok.eos_token_id
    assert tok.decode(stream, skip_special_tokens=True) == "".join(docs)


def test_windows_chain_and_cover_every_target_once():
    ids = list(range(1000))
    w = lm_windows(ids, 16)                                  # (N, T+1)
    assert w.shape == (62, 17)
    assert torch.equal(w[1:, 0], w[:-1, -1])                 # next window starts where one ends
    assert torch.equal(w[:, 1:].flatten(), torch.arange(1, 62 * 16 + 1))
    with pytest.raises(DataError, match="cannot fill one window"):
        lm_windows([1, 2, 3], 16)


def test_lm_batches_same_seed_same_order_different_seed_differs():
    stream = _stream()
    a = list(lm_batches(stream, 32, 8, seed=0))
    b = list(lm_batches(stream, 32, 8, seed=0))
    c = list(lm_batches(stream, 32, 8, seed=1))
    assert all(x.shape == (8, 33) and x.dtype == torch.long for x in a[:-1])
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    assert not torch.equal(a[0], c[0])
    rows = sorted(map(tuple, torch.cat(a).tolist()))
    assert rows == sorted(map(tuple, torch.cat(c).tolist())) == sorted(
        map(tuple, lm_windows(stream, 32).tolist()))         # one epoch: each window once


def test_task_labels_are_the_answer_and_eos_only():
    tok = tokenizer()
    for e in tasks().validation[:20]:
        enc = encode_example(tok, e)
        answer = [t for t in enc.labels if t != IGNORE_INDEX]
        assert tok.decode(answer) == e.completion + tok.eos_token
        n_prompt = len(enc.labels) - len(answer)
        assert tok.decode(enc.input_ids[:n_prompt]) == e.prompt
        assert enc.labels[n_prompt:] == enc.input_ids[n_prompt:]


def test_task_batches_pad_mask_and_seeded_order():
    tok = tokenizer()
    examples = tasks().validation
    a = list(task_batches(tok, examples, 8, seed=3))
    b = list(task_batches(tok, examples, 8, seed=3))
    c = list(task_batches(tok, examples, 8, seed=4))
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, b))
    assert not torch.equal(a[0]["input_ids"], c[0]["input_ids"])
    batch = a[0]
    pad = batch["attention_mask"] == 0
    assert (batch["labels"][pad] == IGNORE_INDEX).all()
    assert (batch["input_ids"][pad] == tok.pad_token_id).all()
    assert sum(len(x["input_ids"]) for x in a) == len(examples)


def test_max_len_cuts_the_prompt_start_and_keeps_the_answer():
    tok = tokenizer()
    e = max(tasks().validation, key=lambda x: len(x.question))
    full = encode_example(tok, e)
    cut = encode_example(tok, e, max_len=20)
    assert len(cut.input_ids) == 20 and cut.input_ids == full.input_ids[-20:]
    with pytest.raises(DataError, match="more than max_len"):
        encode_example(tok, e, max_len=2)
