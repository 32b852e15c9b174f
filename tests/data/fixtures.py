"""Small shared data for the data and eval tests: one corpus, a few hundred tasks, vocab 512."""
from __future__ import annotations

import functools
import tempfile
from types import SimpleNamespace

import torch

from forge.config.data import DataConfig, TaskSpec
from forge.data.tasks import TaskSplits, format_answer, load_tasks, task_texts
from forge.data.text import Corpus, load_corpus
from forge.data.tokenizer import train_tokenizer

SMALL_SUMS = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}


def small_config(**changes) -> DataConfig:
    """Defaults, shrunk: 300 train / 60 validation / 60 test task items."""
    base = dict(task_train_size=300, task_validation_size=60, task_test_size=60, vocab_size=512)
    return DataConfig(**{**base, **changes})


def sums_config(**changes) -> DataConfig:
    """One task with a tiny question space (1-digit a +/- b: 200 questions)."""
    return small_config(tasks=(TaskSpec("chain_sum", 1.0, SMALL_SUMS),), **changes)


@functools.lru_cache(maxsize=None)
def corpus() -> Corpus:
    return load_corpus(small_config())


@functools.lru_cache(maxsize=None)
def tasks() -> TaskSplits:
    return load_tasks(small_config())


@functools.lru_cache(maxsize=None)
def tokenizer():
    texts = corpus().train + task_texts(tasks().train)
    return train_tokenizer(texts, 512, tempfile.mkdtemp(prefix="forge-test-tok-"))


class UniformLM(torch.nn.Module):
    """Logits all zero: p = 1/V for every token."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, self.vocab_size))


class LookupLM(torch.nn.Module):
    """Predicts (logit 30) the next token of whichever known sequence the prefix belongs to."""

    def __init__(self, sequences: list[list[int]], vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.table = {tuple(s[:i]): s[i] for s in sequences for i in range(1, len(s))}

    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
        logits = torch.zeros(*input_ids.shape, self.vocab_size)
        for b, row in enumerate(input_ids.tolist()):
            for t in range(len(row)):
                nxt = self.table.get(tuple(row[:t + 1]))
                if nxt is not None:
                    logits[b, t, nxt] = 30.0
        return SimpleNamespace(logits=logits)


def answering_model(tok, examples, answers: list[str]) -> LookupLM:
    """A model that answers each example's prompt with the given text, then eos."""
    enc = functools.partial(tok.encode, add_special_tokens=False)
    seqs = [enc(e.prompt) + enc(format_answer(a)) + [tok.eos_token_id]
            for e, a in zip(examples, answers)]
    return LookupLM(seqs, len(tok))
