"""Byte-level BPE tokenizer trained with HF `tokenizers` on the run's text, cached by input hash.

    tok = train_tokenizer(texts, vocab_size=2048, cache_dir="runs/.cache/tokenizers")
    tok.save_pretrained(run_dir)            # or copy tokenizer.json; reload with load_tokenizer

Byte-level BPE (GPT-2's scheme, Radford et al. 2019) starts from the 256 byte symbols, so any UTF-8
text round-trips exactly. The special tokens of later phases take ids 0..7 in the order of
`SPECIAL_TOKENS`, the same on every run and every vocabulary size.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from forge.data.errors import DataError

BOS = "<|bos|>"
EOS = "<|eos|>"
PAD = "<|pad|>"
START_THOUGHT = "<|startofthought|>"
END_THOUGHT = "<|endofthought|>"
TOOL_CALL = "<|tool_call|>"
END_TOOL_CALL = "<|/tool_call|>"
PERSONA = "<|persona|>"
SPECIAL_TOKENS: tuple[str, ...] = (BOS, EOS, PAD, START_THOUGHT, END_THOUGHT, TOOL_CALL,
                                   END_TOOL_CALL, PERSONA)
TOKENIZER_FILE = "tokenizer.json"
FORMAT_VERSION = "bytelevel-bpe-v1"  # bump when the training recipe changes, to miss old caches
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)


def inputs_hash(texts: Iterable[str], vocab_size: int,
                special_tokens: tuple[str, ...] = SPECIAL_TOKENS) -> str:
    """sha256 of the recipe version, vocab size, special tokens and each text (length-prefixed)."""
    h = hashlib.sha256(f"{FORMAT_VERSION}\0{vocab_size}\0{chr(0).join(special_tokens)}".encode())
    for text in texts:
        data = text.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def build_bpe(texts: list[str], vocab_size: int) -> Tokenizer:
    """Train byte-level BPE: specials first (ids 0..7), then the 256 bytes, then merges."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2,
                                  special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tok


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """The HF fast tokenizer with bos/eos/pad and the reserved tokens named."""
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS,
                                   pad_token=PAD, additional_special_tokens=list(SPECIAL_TOKENS[3:]),
                                   clean_up_tokenization_spaces=False)


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a `tokenizer.json` (or a folder holding one) saved by this module."""
    path = Path(path)
    file = path / TOKENIZER_FILE if path.is_dir() else path
    if not file.is_file():
        raise DataError(f"tokenizer: no {TOKENIZER_FILE} at {path}")
    try:
        return wrap(Tokenizer.from_file(str(file)))
    except Exception as err:  # the Rust loader raises its own Exception type; name the file
        raise DataError(f"tokenizer: {file} is not a valid tokenizer file ({err})") from err


def train_tokenizer(texts: list[str], vocab_size: int,
                    cache_dir: str | Path) -> PreTrainedTokenizerFast:
    """Train (or load from `cache_dir/<inputs_hash>/tokenizer.json`) a byte-level BPE tokenizer."""
    if vocab_size < MIN_VOCAB:
        raise DataError(f"data.vocab_size: got {vocab_size}; allowed: >= {MIN_VOCAB} "
                        "(256 bytes + special tokens)")
    if not texts:
        raise DataError("tokenizer: no training text")
    file = Path(cache_dir) / inputs_hash(texts, vocab_size) / TOKENIZER_FILE
    if file.is_file():
        return load_tokenizer(file)
    tok = build_bpe(texts, vocab_size)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(f".tmp{os.getpid()}")
    tok.save(str(tmp))
    tmp.replace(file)  # atomic: concurrent trainers of the same inputs never see half a file
    return wrap(tok)


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, directory: str | Path) -> Path:
    """Write `directory/tokenizer.json` (what `forge eval` and later phases load), atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / TOKENIZER_FILE
    tmp = path.with_name(f".{path.name}.tmp")  # a full disk or a kill never leaves half a file
    tokenizer.backend_tokenizer.save(str(tmp))
    tmp.replace(path)
    return path
