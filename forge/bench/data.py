"""`python -m forge.bench data [--quick]`: corpus size, tokenizer training time, batching speed.

One repetition: gather and split the corpus, train the tokenizer (no cache: a fresh temporary
folder each time), encode the training split, then time one epoch of packed LM batches and of
answer-masked task batches. `--quick` uses the stdlib docstrings only and a 512-token vocabulary.
"""
from __future__ import annotations

import tempfile
import time

from forge.config.data import DataConfig
from forge.data.batching import encode_documents, lm_batches, task_batches
from forge.data.tasks import load_tasks, task_texts
from forge.data.text import load_corpus
from forge.data.tokenizer import train_tokenizer

REPEATS = 3
UNITS = {"corpus_bytes": "bytes (train split)", "corpus_tokens": "tokens (train split)",
         "bytes_per_token": "bytes", "corpus_load_s": "s", "task_generation_s": "s",
         "tokenizer_train_s": "s", "encode_tokens_per_s": "tokens/s",
         "lm_batching_tokens_per_s": "tokens/s", "task_batching_examples_per_s": "examples/s"}


def config(quick: bool) -> DataConfig:
    """The default data config, or a small one for --quick."""
    if quick:
        return DataConfig(pydoc_topics=False, vocab_size=512, task_train_size=300,
                          task_validation_size=50, task_test_size=50)
    return DataConfig()


def setup(quick: bool) -> dict:
    """Facts recorded once: sizes of the splits and the task mix."""
    cfg = config(quick)
    corpus, tasks = load_corpus(cfg), load_tasks(cfg)
    return {"documents (train/validation/test)":
            f"{len(corpus.train)}/{len(corpus.validation)}/{len(corpus.test)}",
            "task examples (train/validation/test)":
            f"{len(tasks.train)}/{len(tasks.validation)}/{len(tasks.test)}",
            "tasks": ", ".join(t.name for t in cfg.tasks), "vocab_size": cfg.vocab_size,
            "seq_len": cfg.seq_len, "sources": corpus.source_counts}


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def measure(quick: bool) -> dict[str, float]:
    """One repetition of the whole data preparation, timed step by step."""
    cfg = config(quick)
    corpus, load_s = _timed(lambda: load_corpus(cfg))
    tasks, task_s = _timed(lambda: load_tasks(cfg))
    texts = corpus.train + task_texts(tasks.train)
    with tempfile.TemporaryDirectory() as cache:
        tok, train_s = _timed(lambda: train_tokenizer(texts, cfg.vocab_size, cache))
    ids, encode_s = _timed(lambda: encode_documents(tok, corpus.train))
    batches, lm_s = _timed(lambda: sum(b.numel() for b in lm_batches(ids, cfg.seq_len, 32, 0)))
    examples, task_batch_s = _timed(
        lambda: sum(len(b["input_ids"]) for b in task_batches(tok, tasks.train, 32, 0)))
    return {"corpus_bytes": corpus.num_bytes("train"), "corpus_tokens": len(ids),
            "bytes_per_token": corpus.num_bytes("train") / len(ids), "corpus_load_s": load_s,
            "task_generation_s": task_s, "tokenizer_train_s": train_s,
            "encode_tokens_per_s": len(ids) / encode_s, "lm_batching_tokens_per_s": batches / lm_s,
            "task_batching_examples_per_s": examples / task_batch_s}
