"""Data section: text sources, reasoning tasks, tokenizer and splits (DESIGN.md section 6).

    data:
      text_files: [notes/, "docs/**/*.md"]
      tasks: [{name: chain_sum, weight: 2, config: {min_terms: 2, max_terms: 2}}]

Everything here is offline by default; `hf_dataset` is the one option that needs a network.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from forge.config.schema import ConfigError, option

# Task split sizes must stay below the gap between split seeds (forge.data.tasks.SPLIT_SEED_GAP).
MAX_TASK_SPLIT = 10_000_000


@dataclass(frozen=True)
class TaskSpec:
    """One reasoning-gym generator in the task mix."""

    name: str = option(doc="reasoning-gym dataset name, e.g. 'chain_sum'.")
    weight: float = option(1.0, "Share of the task mix (weights are normalised over the mix).", gt=0)
    config: dict[str, Any] = option(default_factory=dict,
                                    doc="Keyword settings passed to the generator's config class.")


def _default_tasks() -> tuple[TaskSpec, ...]:
    small_sums = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}
    return (TaskSpec("chain_sum", 2.0, small_sums),
            TaskSpec("basic_arithmetic", 1.0, {**small_sums, "operators": ["+", "-"],
                                               "allow_parentheses": False}),
            TaskSpec("leg_counting", 1.0, {"min_animals": 1, "max_animals": 2}),
            TaskSpec("letter_counting", 1.0, {"min_words": 3, "max_words": 5}),
            TaskSpec("word_sorting", 1.0, {"min_words": 2, "max_words": 3}))


@dataclass(frozen=True)
class EvalConfig:
    """How much held-out data an evaluation reads and how it generates answers."""

    seq_len: int = option(256, "Tokens per window when scoring held-out text.", ge=8)
    batch_size: int = option(16, "Sequences per forward pass during evaluation.", ge=1)
    max_documents: int = option(200, "Held-out documents scored for perplexity (0: all).", ge=0)
    max_task_examples: int = option(100, "Task examples scored per task (0: all).", ge=0)
    max_new_tokens: int = option(24, "Greedy tokens generated per answer for exact match.", ge=1)
    reference: bool = option(True, "Also evaluate an untrained model of the same shape.")


@dataclass(frozen=True)
class DataConfig:
    """Where training text and tasks come from, how they are split and tokenized."""

    seed: int = option(0, "Seed of splits, sampling and batch order.", ge=0)
    stdlib_docstrings: bool = option(True, "Use docstrings of a fixed list of stdlib modules.")
    pydoc_topics: bool = option(True, "Use the reference topics of `pydoc_data.topics`.")
    system_docs: bool = option(False, "Also read /usr/share/doc/python3* text files when present.")
    text_files: tuple[str, ...] = option((), "Files, folders or globs of .txt, .md or .jsonl text.")
    jsonl_text_field: str = option("text", "Field holding the text in each .jsonl line.")
    hf_dataset: Optional[str] = option(None, "Hugging Face dataset name; needs network access.")
    hf_split: str = option("train", "Split of `hf_dataset` to read.")
    min_document_chars: int = option(40, "Shorter documents (after normalising) are dropped.",
                                      ge=1)
    validation_fraction: float = option(0.05, "Share of documents held out for validation.",
                                        gt=0, lt=0.5)
    test_fraction: float = option(0.05, "Share of documents held out for the test split.",
                                  gt=0, lt=0.5)
    tasks: tuple[TaskSpec, ...] = option(default_factory=_default_tasks,
                                         doc="reasoning-gym task mix: [{name, weight, config}].")
    task_train_size: int = option(2000, "Training task examples over the whole mix.", ge=0,
                                  le=MAX_TASK_SPLIT)
    task_validation_size: int = option(200, "Validation task examples over the whole mix.", ge=0,
                                       le=MAX_TASK_SPLIT)
    task_test_size: int = option(200, "Test task examples over the whole mix.", ge=0,
                                 le=MAX_TASK_SPLIT)
    vocab_size: int = option(2048, "Tokenizer vocabulary size, special tokens included.",
                             ge=300, le=1_000_000)
    tokenizer_cache: str = option(".cache/forge/tokenizers",
                                  "Folder of trained tokenizers keyed by the hash of their inputs.")
    seq_len: int = option(128, "Tokens per packed language-modelling sequence.", ge=8)
    eval: EvalConfig = option(default_factory=EvalConfig, doc="Evaluation sizes and settings.")

    def check(self, path: str) -> None:
        """Reject settings that cannot make three non-empty text splits."""
        where = f"{path}." if path else ""
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ConfigError(f"{where}validation_fraction + test_fraction: got "
                              f"{self.validation_fraction + self.test_fraction}; allowed: < 0.9")
        names = [t.name for t in self.tasks]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ConfigError(f"{where}tasks[{i}].name: {name!r} appears twice")
