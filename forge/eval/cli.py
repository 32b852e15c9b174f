"""`forge eval MODEL_DIR [--split validation|test]`: evaluate a saved model and print the table.

    forge eval runs/<run_id>/cognate/model_a --split test
    forge eval runs/<run_id>/cognate/model_a --set data.eval.max_task_examples=20

MODEL_DIR holds an HF model (config.json + model.safetensors). tokenizer.json and the run's
config.yaml are looked up in MODEL_DIR, then its parents up to the run directory; without a
config.yaml the default config/pipeline.yaml is used. Exit 0 on success, 2 on bad input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from safetensors import SafetensorError

from forge.config import ConfigError, load
from forge.config.data import DataConfig
from forge.data.errors import DataError
from forge.data.tasks import load_tasks
from forge.data.text import CORPUS_FILE, SPLITS, load_corpus, read_corpus
from forge.data.tokenizer import TOKENIZER_FILE, load_tokenizer
from forge.eval.evaluate import evaluate
from forge.eval.report import summary_table, task_table
from forge.eval.saved_config import check_saved_config
from forge.eval.size import model_size
from forge.pipeline.artifacts import find_upwards

EVAL_SPLITS = ("validation", "test")
RUN_CONFIG_FILE = "config.yaml"


class EvalInputError(ValueError):
    """A model dir, tokenizer, config or split that `forge eval` cannot use."""


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Add MODEL_DIR, --split, --config, --set and --no-reference to `parser`."""
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="folder with config.json + weights")
    parser.add_argument("--split", default="validation",
                        help="validation (selection) or test (reporting only)")
    parser.add_argument("--config", default=None, help="pipeline YAML (default: the run's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="config override, e.g. data.eval.batch_size=8")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the untrained model of the same shape")


def open_model(model_dir: Path) -> Any:
    """`forge.load_model(model_dir)` (every artifact kind, packed ternary included) for a CLI:
    failures become one-line `EvalInputError`s."""
    import forge

    if not (model_dir / "config.json").is_file():
        raise EvalInputError(f"{model_dir}: no config.json (not a saved model folder)")
    try:
        check_saved_config(model_dir / "config.json")
    except ConfigError as err:
        raise EvalInputError(str(err)) from None
    try:
        return forge.load_model(model_dir)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise EvalInputError(f"{model_dir}: cannot load the model ({first_line})") from err


def data_config(model_dir: Path, config: str | None, overrides: list[str]) -> DataConfig:
    """The data section of --config, else of the run's config.yaml, else of the default."""
    path = Path(config) if config else find_upwards(model_dir, RUN_CONFIG_FILE)
    return load(path, overrides).data


def untrained_like(model: Any, seed: int) -> Any:
    """A freshly initialised model with the same config (the 'better than nothing' reference)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(model.config).eval()


def evaluate_dir(model_dir: Path, split: str, cfg: DataConfig,
                 reference: bool) -> dict[str, dict[str, float]]:
    """Columns of the table: the model, its untrained twin and the unigram baseline."""
    if split not in EVAL_SPLITS:
        raise EvalInputError(f"--split: got {split!r}; allowed: {', '.join(EVAL_SPLITS)}")
    model = open_model(model_dir)
    tok_file = find_upwards(model_dir, TOKENIZER_FILE)
    if tok_file is None:
        raise EvalInputError(f"{model_dir}: no {TOKENIZER_FILE} in it or its run directory")
    tokenizer = load_tokenizer(tok_file)
    model_vocab = getattr(model.config, "vocab_size", None)
    if isinstance(model_vocab, int) and len(tokenizer) > model_vocab:
        raise EvalInputError(f"{tok_file}: {len(tokenizer)} tokens but the model has "
                             f"vocab_size {model_vocab}; use the run's own tokenizer.json")
    saved = find_upwards(model_dir, CORPUS_FILE)  # the run's own documents, when it kept them
    corpus = read_corpus(saved) if saved else load_corpus(cfg)
    tasks = load_tasks(cfg)
    texts, examples = corpus.split(split), tasks.split(split)
    results = evaluate(model, tokenizer, texts, examples, cfg.eval, reference_texts=corpus.train)
    size = model_size(model_dir)
    results.update({"size/params": float(size.params), "size/bytes": float(size.bytes)})
    columns = {model_dir.name or str(model_dir): results}
    if reference and cfg.eval.reference:
        columns["untrained"] = evaluate(untrained_like(model, cfg.seed), tokenizer, texts,
                                        examples, cfg.eval)
    columns["unigram"] = {"text/bits_per_byte": results["baseline/unigram_bits_per_byte"]}
    return columns


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate MODEL_DIR on one split and print the table; 0 on success, 2 on bad input."""
    model_dir = Path(args.model_dir)
    if not model_dir.is_dir():
        print(f"forge eval: {model_dir}: no such model folder", file=sys.stderr)
        return 2
    try:
        cfg = data_config(model_dir, args.config, args.overrides)
        columns = evaluate_dir(model_dir, args.split, cfg, not args.no_reference)
    except (EvalInputError, ConfigError, DataError) as err:
        print(f"forge eval: {err}", file=sys.stderr)
        return 2
    console = Console()
    console.print(summary_table(columns, f"forge eval {model_dir} --split {args.split}"))
    console.print(task_table(columns))
    return 0
