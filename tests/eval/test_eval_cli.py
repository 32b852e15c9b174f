"""`forge eval`: a saved tiny GPT-2 evaluates offline; bad inputs exit 2 with one line."""
from __future__ import annotations

import argparse
import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from forge.data.tokenizer import save_tokenizer
from forge.eval import evaluate, model_size
from forge.eval.cli import add_eval_arguments, run_eval
from tests.data.fixtures import corpus, small_config, tasks, tokenizer

SMALL = ["data.task_validation_size=10", "data.task_test_size=10", "data.task_train_size=10",
         "data.vocab_size=512", "data.eval.max_documents=5", "data.eval.max_new_tokens=4",
         "data.eval.seq_len=64"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """runs/<run>/cognate/model_a with tokenizer.json in the run dir, as the pipeline lays out."""
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=512,
                                       n_positions=256))
    model.save_pretrained(run / "cognate" / "model_a")
    save_tokenizer(tokenizer(), run)
    return run


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_eval_arguments(parser)
    return parser.parse_args(list(argv))


def test_eval_prints_the_table(run_dir, capsys):
    model_dir = run_dir / "cognate" / "model_a"
    sets = [x for s in SMALL for x in ("--set", s)]
    assert run_eval(_args(str(model_dir), "--split", "test", *sets)) == 0
    out = capsys.readouterr().out
    for needle in ("text bits/byte", "exact match", "chain_sum", "untrained", "unigram", "n=2"):
        assert needle in out


@pytest.mark.parametrize("argv, message", [
    (["{run}/nowhere"], "no such model folder"),
    (["{run}/cognate"], "no config.json"),
    (["{run}/broken"], "cannot load the model"),
    (["{run}/cognate/model_a", "--split", "train"], "--split: got 'train'"),
    (["{run}/small_vocab"], "but the model has vocab_size 300"),
    (["{run}/cognate/model_a", "--set", "data.vocab_size=1"], "data.vocab_size"),
    (["{run}/cognate/model_a", "--config", "{run}/binary.yaml"], "binary.yaml is not a text file"),
    (["{run}/heads0"], "config.json: n_heads: got 0; allowed: a number >= 1"),
    (["{run}/banana"], "config.json: d_model: got 'banana'; allowed: an integer"),
    (["{run}/notjson"], "config.json: not a JSON config"),
])
def test_bad_input_exits_2_with_one_line(run_dir, capsys, argv, message):
    broken = run_dir / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1}))
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    small = run_dir / "small_vocab"
    if not small.exists():
        GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=300)).save_pretrained(small)
    (run_dir / "binary.yaml").write_bytes(bytes(range(256)))
    cognate = {"model_type": "cognate", "vocab_size": 512, "d_model": 32, "n_heads": 2}
    for name, config in (("heads0", {**cognate, "n_heads": 0}),
                         ("banana", {**cognate, "d_model": "banana"}), ("notjson", None)):
        (run_dir / name).mkdir(exist_ok=True)
        (run_dir / name / "config.json").write_text(json.dumps(config) if config else "{oops")
    assert run_eval(_args(*[a.format(run=run_dir) for a in argv])) == 2
    ours = [line for line in capsys.readouterr().err.splitlines() if "forge eval:" in line]
    assert len(ours) == 1 and message in ours[0]


def test_model_size_of_folder_matches_the_model(run_dir):
    folder = run_dir / "cognate" / "model_a"
    on_disk = model_size(folder)
    model = GPT2LMHeadModel.from_pretrained(folder)
    assert on_disk.params == model_size(model).params == sum(p.numel() for p in model.parameters())
    assert on_disk.bytes == sum(p.stat().st_size for p in folder.iterdir())


def test_evaluate_returns_every_number():
    cfg = small_config().eval
    tok = tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=512,
                                       n_positions=256))
    cfg = type(cfg)(seq_len=64, max_documents=5, max_task_examples=3, max_new_tokens=3)
    r = evaluate(model, tok, corpus().validation, tasks().validation, cfg,
                 reference_texts=corpus().train)
    assert r["tasks/n"] == 15 and r["task/word_sorting/n"] == 3 and r["text/documents"] == 5
    assert 100 < r["text/perplexity"] < 2000 and 0 < r["baseline/unigram_bits_per_byte"] < 8
    assert 0 <= r["tasks/exact_match_low"] <= r["tasks/exact_match"] <= r["tasks/exact_match_high"]
    assert r["size/params"] == sum(p.numel() for p in model.parameters())
