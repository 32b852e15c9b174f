"""Steps several phases share: the run's data and tokenizer, the device, evaluation."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerFast

from forge.config import PipelineConfig
from forge.data.tasks import TaskSplits, load_tasks, task_texts
from forge.data.text import CORPUS_FILE, Corpus, load_corpus, read_corpus, save_corpus
from forge.data.tokenizer import TOKENIZER_FILE, load_tokenizer, save_tokenizer, train_tokenizer
from forge.eval import evaluate
from forge.storage import RunStorage


@dataclass
class RunData:
    """Text splits, task splits and the run's tokenizer."""

    corpus: Corpus
    tasks: TaskSplits
    tokenizer: PreTrainedTokenizerFast


def run_corpus(cfg: PipelineConfig, run_dir: Path, storage: RunStorage | None = None) -> Corpus:
    """The run's text corpus, gathered once (by `forge.submit`, where the run starts) and kept in
    the run as `corpus.json`: every later process, on any node, reads that copy, so
    `data.text_files` need exist only where the run started and every node scores the same
    documents whatever its Python version (the stdlib docstrings differ between versions)."""
    storage, rel = _run_file(run_dir, storage, CORPUS_FILE)
    return read_corpus(storage.pull_or_make(rel, lambda path: save_corpus(load_corpus(cfg.data),
                                                                          path)))


def prepare_data(cfg: PipelineConfig, run_dir: Path, storage: RunStorage | None = None) -> RunData:
    """Load the corpus and tasks; train the tokenizer once per run and save it in the run dir.

    Later calls (other phases, trainers on other processes and nodes) load `run_dir/tokenizer.json`,
    pulled from the run storage when one is given, so every model of a run shares one vocabulary.
    """
    corpus, tasks = run_corpus(cfg, run_dir, storage), load_tasks(cfg.data)

    def train(path: Path) -> None:
        texts = corpus.train + task_texts(tasks.train)
        save_tokenizer(train_tokenizer(texts, cfg.data.vocab_size, cfg.data.tokenizer_cache),
                       path.parent)

    storage, rel = _run_file(run_dir, storage, TOKENIZER_FILE)
    return RunData(corpus, tasks, load_tokenizer(storage.pull_or_make(rel, train)))


def _run_file(run_dir: Path, storage: RunStorage | None, name: str) -> tuple[RunStorage, str]:
    """The storage and storage path of `run_dir/name` (a plain run directory: its parent)."""
    path = Path(run_dir) / name
    if storage is None:
        storage = RunStorage(Path(run_dir).resolve().parent)
    return storage, storage.rel(path)


def pick_device(setting: str) -> torch.device:
    """'auto' -> CUDA when torch sees it, else CPU. Never from Ray's GPU ids (RAY_NOTES.md)."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("run.device is 'cuda' but torch sees no CUDA device")
    if setting == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def evaluate_split(model: Any, data: RunData, cfg: PipelineConfig,
                   split: str = "validation") -> dict[str, float]:
    """Every evaluation number of `model` on one split (validation selects, test reports)."""
    model.eval()
    with torch.no_grad():
        return evaluate(model, data.tokenizer, data.corpus.split(split), data.tasks.split(split),
                        cfg.data.eval,
                        reference_texts=data.corpus.train)
