"""All numbers of one evaluation in one flat dict of floats (ready for the registry's metrics).

Keys:
    text/perplexity, text/bits_per_byte, text/tokens, text/bytes, text/documents
    tasks/answer_bits_per_byte, tasks/exact_match, tasks/exact_match_low, tasks/exact_match_high,
    tasks/mean_score, tasks/n
    task/<name>/answer_bits_per_byte, task/<name>/exact_match, ..._low, ..._high, task/<name>/n
    size/params, size/bytes
    baseline/unigram_bits_per_byte          (when reference texts are given)
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

from transformers import PreTrainedTokenizerFast

from forge.config.data import EvalConfig
from forge.data.tasks import TaskExample
from forge.eval.accuracy import Accuracy, accuracy_by_task, accuracy_of, generate_answers
from forge.eval.answers import answer_bits_by_task, answer_nll, bits_per_answer_byte
from forge.eval.baselines import unigram_bits_per_byte
from forge.eval.size import model_size
from forge.eval.text import text_nll


def first_n(items: Sequence[Any], n: int) -> list[Any]:
    """The first n items (all when n is 0)."""
    return list(items[:n] if n else items)


def per_task_sample(examples: Sequence[TaskExample], n: int) -> list[TaskExample]:
    """The first n examples of each task (all when n is 0), keeping the split's order."""
    seen: dict[str, int] = defaultdict(int)
    out = []
    for e in examples:
        if not n or seen[e.task] < n:
            seen[e.task] += 1
            out.append(e)
    return out


def accuracy_entries(prefix: str, acc: Accuracy) -> dict[str, float]:
    """exact_match, its 95% interval and n under `prefix`."""
    return {f"{prefix}/exact_match": acc.accuracy, f"{prefix}/exact_match_low": acc.low,
            f"{prefix}/exact_match_high": acc.high, f"{prefix}/n": float(acc.n)}


def text_entries(model: Any, tokenizer: PreTrainedTokenizerFast, texts: Sequence[str],
                 cfg: EvalConfig) -> dict[str, float]:
    """Perplexity and bits per byte of the held-out documents."""
    docs = first_n(texts, cfg.max_documents)
    nll = text_nll(model, tokenizer, docs, cfg.seq_len, cfg.batch_size)
    return {"text/perplexity": nll.perplexity, "text/bits_per_byte": nll.bits_per_byte,
            "text/tokens": float(nll.tokens), "text/bytes": float(nll.bytes),
            "text/documents": float(len(docs))}


def task_entries(model: Any, tokenizer: PreTrainedTokenizerFast,
                 examples: Sequence[TaskExample], cfg: EvalConfig) -> dict[str, float]:
    """Answer bits per byte and exact match, over all tasks and per task."""
    sample = per_task_sample(examples, cfg.max_task_examples)
    nats = answer_nll(model, tokenizer, sample, cfg.batch_size)
    predictions = generate_answers(model, tokenizer, sample, cfg.max_new_tokens, cfg.batch_size)
    overall = accuracy_of(sample, predictions)
    out = {"tasks/answer_bits_per_byte": bits_per_answer_byte(nats, sample),
           "tasks/mean_score": overall.mean_score, **accuracy_entries("tasks", overall)}
    bits = answer_bits_by_task(nats, sample)
    for task, acc in accuracy_by_task(sample, predictions).items():
        out[f"task/{task}/answer_bits_per_byte"] = bits[task]
        out.update(accuracy_entries(f"task/{task}", acc))
    return out


def evaluate(model: Any, tokenizer: PreTrainedTokenizerFast, corpus_split: Sequence[str],
             task_split: Sequence[TaskExample], cfg: EvalConfig,
             reference_texts: Sequence[str] | None = None) -> dict[str, float]:
    """Text, task and size metrics of `model` on one split (keys in the module docstring).
    `reference_texts` (the training documents) adds the character-unigram baseline."""
    out: dict[str, float] = {}
    if corpus_split:
        out.update(text_entries(model, tokenizer, corpus_split, cfg))
    if task_split:
        out.update(task_entries(model, tokenizer, task_split, cfg))
    size = model_size(model)
    out.update({"size/params": float(size.params), "size/bytes": float(size.bytes)})
    if reference_texts and corpus_split:
        docs = first_n(corpus_split, cfg.max_documents)
        out["baseline/unigram_bits_per_byte"] = unigram_bits_per_byte(reference_texts, docs)
    return out
