"""A tiny run folder for the serve/export tests: tokenizer.json, an fp and a packed ternary model."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from forge.data.tokenizer import build_bpe
from forge.pipeline.artifacts import save_artifact
from forge.quant import convert_to_ternary, save_ternary
from tests.quant.conftest import small_model

VOCAB = 288  # the 8 specials + 256 bytes + a few merges
TEXT = ["the quick brown fox jumps over the lazy dog", "hello world, hello forge",
        "Question: 3 + 4 = 7", "Answer: 12"] * 10


def make_run(root: Path) -> Path:
    """runs/r1/{tokenizer.json, cognate/fp, bitnet/ternary}: the two artifact kinds serving sees."""
    run = root / "r1"
    run.mkdir(parents=True)
    build_bpe(TEXT, VOCAB).save(str(run / "tokenizer.json"))
    model = small_model(seed=3, vocab_size=VOCAB, max_seq_len=48).eval()
    save_artifact(model, run / "cognate" / "fp", metrics={"val_bpb": 2.5})
    convert_to_ternary(model)
    save_ternary(model.eval(), run / "bitnet" / "ternary", parents=["r1/cognate/fp"],
                 metrics={"val_bpb": 2.75})
    return run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return make_run(tmp_path_factory.mktemp("serve-runs"))
