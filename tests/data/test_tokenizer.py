"""Tokenizer: exact round trip on every built-in source, stable special ids, caching."""
from __future__ import annotations

from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerFast

from forge.data import sources, tokenizer as tokmod
from forge.data.errors import DataError
from forge.data.tasks import task_texts
from forge.data.tokenizer import SPECIAL_TOKENS, load_tokenizer, save_tokenizer, train_tokenizer
from tests.data.fixtures import corpus, tasks, tokenizer

TEXTS = ["Return the sum of a and b.", "Ternary weights: -1, 0, +1. Bits/weight = log2(3) ≈ 1.58",
         "Compute the gcd of 12 and 18.", "def f(x):\n    return x * 2\n"] * 20


def _builtin_samples() -> dict[str, list[str]]:
    samples = {"stdlib_docstrings": sources.stdlib_docstrings()[::25],
               "pydoc_topics": sources.pydoc_topics()[::4],
               "tasks": task_texts(tasks().validation),
               "unseen unicode": ["naïve café 世界 🙂 \t tab  double  space\r\n", "  lead & trail  "]}
    system = sources.system_docs()
    if system:
        samples["system_docs"] = [d[:20_000] for d in system[::6]]
    return samples


@pytest.mark.parametrize("source", ["stdlib_docstrings", "pydoc_topics", "tasks", "system_docs",
                                    "unseen unicode"])
def test_round_trip_on_every_builtin_source(source):
    samples = _builtin_samples()
    if source not in samples:
        pytest.skip(f"{source} not present on this machine")
    tok = tokenizer()
    for text in samples[source]:
        ids = tok.encode(text, add_special_tokens=False)
        assert tok.decode(ids) == text


def test_special_tokens_have_fixed_ids_across_runs_and_sizes(tmp_path):
    a = tokenizer()
    b = train_tokenizer(TEXTS, 300, tmp_path)
    for i, name in enumerate(SPECIAL_TOKENS):
        assert a.convert_tokens_to_ids(name) == b.convert_tokens_to_ids(name) == i
        assert a.encode(f"x{name}y", add_special_tokens=False)[1] == i  # one token, never split
    assert (a.bos_token_id, a.eos_token_id, a.pad_token_id) == (0, 1, 2)
    assert len(a) == 512 and len(b) <= 300


def test_same_inputs_same_tokenizer_and_cache_hit(tmp_path, monkeypatch):
    first = train_tokenizer(TEXTS, 320, tmp_path / "one")
    again = train_tokenizer(TEXTS, 320, tmp_path / "two")
    assert first.backend_tokenizer.to_str() == again.backend_tokenizer.to_str()

    def no_training(*args):
        raise AssertionError("retrained although the inputs were cached")

    monkeypatch.setattr(tokmod, "build_bpe", no_training)
    cached = train_tokenizer(TEXTS, 320, tmp_path / "one")
    assert cached.get_vocab() == first.get_vocab()
    assert len(list((tmp_path / "one").glob("*/tokenizer.json"))) == 1


def test_different_inputs_different_hash():
    base = tokmod.inputs_hash(TEXTS, 320)
    assert base == tokmod.inputs_hash(list(TEXTS), 320)
    assert base != tokmod.inputs_hash(TEXTS, 321)
    assert base != tokmod.inputs_hash(TEXTS[:-1], 320)
    assert tokmod.inputs_hash(["ab", "c"], 320) != tokmod.inputs_hash(["a", "bc"], 320)


def test_saved_file_loads_as_pretrained_tokenizer_fast(tmp_path):
    tok = tokenizer()
    path = save_tokenizer(tok, tmp_path)
    plain = PreTrainedTokenizerFast(tokenizer_file=str(path))
    ours = load_tokenizer(tmp_path)
    text = corpus().validation[0]
    assert plain.encode(text) == ours.encode(text) == tok.encode(text)
    assert ours.eos_token_id == 1 and ours.pad_token == "<|pad|>"


def test_bad_inputs(tmp_path):
    with pytest.raises(DataError, match="data.vocab_size"):
        train_tokenizer(TEXTS, 100, tmp_path)
    with pytest.raises(DataError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(DataError, match="not a valid tokenizer file"):
        load_tokenizer(Path(tmp_path))


def test_save_is_atomic_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    tok = tokenizer()
    path = save_tokenizer(tok, tmp_path)
    before = path.read_bytes()

    def full_disk(target: str) -> None:
        open(target, "w").write('{"version": "1.0", "trunc')  # what ENOSPC leaves behind
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(tok.backend_tokenizer), "save", lambda self, target: full_disk(target))
    with pytest.raises(OSError):
        save_tokenizer(tok, tmp_path)
    assert path.read_bytes() == before and len(load_tokenizer(path)) == len(tok)
