"""The text corpus: gather sources, normalise, deduplicate and split by document.

    corpus = load_corpus(cfg.data)
    corpus.train, corpus.validation, corpus.test     # lists of document strings

A document's split is decided by ranking sha256(seed, document): the same seed and sources give the
same splits on every machine, and adding a document moves few others.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from forge.config.data import DataConfig
from forge.data import files, hub, sources
from forge.data.errors import DataError

SPLITS = ("train", "validation", "test")
CORPUS_FILE = "corpus.json"  # a run's saved documents, beside its tokenizer.json
_BLANK_RUNS = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Corpus:
    """Documents of each split, and how many documents each source gave before deduplication."""

    train: list[str]
    validation: list[str]
    test: list[str]
    source_counts: dict[str, int] = field(default_factory=dict)

    def split(self, name: str) -> list[str]:
        """The documents of split `name` ('train', 'validation' or 'test')."""
        if name not in SPLITS:
            raise DataError(f"split: got {name!r}; allowed: {', '.join(SPLITS)}")
        return getattr(self, name)

    def num_bytes(self, name: str) -> int:
        """UTF-8 bytes of split `name`."""
        return sum(len(d.encode("utf-8")) for d in self.split(name))


def normalise(text: str) -> str:
    """NFC, '\\n' line ends, tabs as spaces, no trailing spaces, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.expandtabs(4).rstrip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def deduplicate(docs: list[str]) -> list[str]:
    """Keep the first copy of each document, in order."""
    return list(dict.fromkeys(docs))


def gather(cfg: DataConfig) -> dict[str, list[str]]:
    """Raw documents of every enabled source, keyed by source name, in a fixed order."""
    found: dict[str, list[str]] = {}
    if cfg.stdlib_docstrings:
        found["stdlib_docstrings"] = sources.stdlib_docstrings()
    if cfg.pydoc_topics:
        found["pydoc_topics"] = sources.pydoc_topics()
    if cfg.system_docs:
        found["system_docs"] = sources.system_docs()
    if cfg.text_files:
        found["text_files"] = files.user_documents(cfg.text_files, cfg.jsonl_text_field)
    if cfg.hf_dataset:
        found["hf_dataset"] = hub.hub_documents(cfg.hf_dataset, cfg.hf_split, cfg.jsonl_text_field)
    return found


def _rank_key(seed: int, doc: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{doc}".encode("utf-8")).digest()


def split_documents(docs: list[str], seed: int, validation_fraction: float,
                    test_fraction: float) -> tuple[list[str], list[str], list[str]]:
    """Rank documents by sha256(seed, doc); the first ceil(n * test) are test, the next
    ceil(n * validation) validation, the rest train. Each split keeps the input order."""
    n = len(docs)
    n_test, n_val = math.ceil(n * test_fraction), math.ceil(n * validation_fraction)
    if n - n_test - n_val < 1:
        raise DataError(f"data: {n} documents cannot fill train, validation and test splits; "
                        "add text (data.text_files) or enable more sources")
    ranked = sorted(range(n), key=lambda i: _rank_key(seed, docs[i]))
    test_ids, val_ids = set(ranked[:n_test]), set(ranked[n_test:n_test + n_val])
    test = [d for i, d in enumerate(docs) if i in test_ids]
    val = [d for i, d in enumerate(docs) if i in val_ids]
    train = [d for i, d in enumerate(docs) if i not in test_ids and i not in val_ids]
    return train, val, test


def load_corpus(cfg: DataConfig) -> Corpus:
    """Gather the enabled sources, normalise, drop short and duplicate documents, split by seed."""
    found = gather(cfg)
    docs = [normalise(d) for source in found.values() for d in source]
    docs = deduplicate([d for d in docs if len(d) >= cfg.min_document_chars])
    train, val, test = split_documents(docs, cfg.seed, cfg.validation_fraction, cfg.test_fraction)
    return Corpus(train, val, test, {k: len(v) for k, v in found.items()})


def save_corpus(corpus: Corpus, path: str | Path) -> Path:
    """Write the corpus (its splits and source counts) as JSON, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(corpus)))
    tmp.replace(path)
    return path


def read_corpus(path: str | Path) -> Corpus:
    """A corpus written by `save_corpus`; DataError naming the file when it is not one."""
    try:
        return Corpus(**json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError) as err:
        raise DataError(f"{path}: not a saved corpus ({err})") from None
