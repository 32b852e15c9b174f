"""`forge generate MODEL "prompt" [--show-thoughts]`: generation that thinks (Quiet-STaR).

    forge generate runs/<run_id>/quiet_star/thinker "Question: 3 + 4 =\\nAnswer:"
    forge generate runs/<run_id>/quiet_star/thinker "2 + 5 =" --show-thoughts --max-new-tokens 4

MODEL is a saved model folder (config.json + model.safetensors) or a registered model id
(run/phase/name, looked up in --runs-dir). The run's tokenizer.json is found in MODEL or its
parents (or given with --tokenizer). A model with a thought head thinks before every token and
prints only the answer; --show-thoughts also prints, per emitted token, the thought behind it on
stderr. --no-think generates on the plain causal-LM path (any Cognate model). A prompt longer
than the model's context (max_seq_len, less --max-new-tokens) keeps its last tokens, with a
warning on stderr.
Exit 0 on success, 2 on bad input (one line naming what is wrong).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from forge.data.tokenizer import TOKENIZER_FILE


class GenerateInputError(ValueError):
    """A model, tokenizer or option that `forge generate` cannot use."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forge generate", description=__doc__.splitlines()[0])
    parser.add_argument("model", metavar="MODEL", help="model folder or registered model id")
    parser.add_argument("prompt", help="text to continue")
    parser.add_argument("--show-thoughts", action="store_true",
                        help="print the thought behind each emitted token (stderr)")
    parser.add_argument("--no-think", action="store_true", help="plain generation, no thoughts")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="thought sampling temperature (0: greedy thoughts)")
    parser.add_argument("--seed", type=int, default=0, help="seed of thought sampling")
    parser.add_argument("--tokenizer", default=None, help="tokenizer.json (default: the run's)")
    parser.add_argument("--runs-dir", default="runs", help="where registered ids are looked up")
    return parser


def model_folder(spec: str, runs_dir: str) -> Path:
    """The artifact folder of a model folder or registered id; GenerateInputError otherwise."""
    if Path(spec).is_dir():
        return Path(spec)
    from forge.pipeline.inputs import InputModelError, resolve_inputs

    try:
        return resolve_inputs([spec], runs_dir)[0].path
    except InputModelError as err:
        raise GenerateInputError(str(err).replace("pipeline.inputs[0]", "MODEL")) from None


def check_options(args: argparse.Namespace) -> None:
    if args.max_new_tokens < 1:
        raise GenerateInputError(f"--max-new-tokens: got {args.max_new_tokens}; allowed: >= 1")
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise GenerateInputError(f"--temperature: got {args.temperature}; allowed: a finite "
                                 "number >= 0")
    if not args.prompt.strip():
        raise GenerateInputError("prompt: empty; give the text to continue")


def fit_context(prompt: list[int], config, max_new_tokens: int) -> list[int]:
    """The prompt's last tokens that leave room for `max_new_tokens` in the model's context
    (`max_seq_len`): a longer prompt is cut from the front, with a warning, so memory stays
    bounded by the context the model was built for."""
    context = getattr(config, "max_seq_len", None) or getattr(config, "max_position_embeddings", None)
    if not context:
        return prompt
    if max_new_tokens >= context:
        raise GenerateInputError(f"--max-new-tokens: got {max_new_tokens}; allowed: fewer than "
                                 f"the model's context of {context} tokens")
    room = context - max_new_tokens
    if len(prompt) > room:
        print(f"forge generate: warning: the prompt has {len(prompt):,} tokens, more than the "
              f"model's context ({context}) leaves beside {max_new_tokens} new ones; kept its "
              f"last {room}", file=sys.stderr)
        return prompt[-room:]
    return prompt


def generate(args: argparse.Namespace) -> tuple[str, list[tuple[str, str]]]:
    """The answer text and, per emitted token, (token text, thought text)."""
    from forge.data.errors import DataError
    from forge.data.tokenizer import load_tokenizer
    from forge.eval.cli import EvalInputError, open_model
    from forge.pipeline.artifacts import find_upwards
    from forge.eval.generate import greedy_generate
    from forge.reasoning.generate import think_generate

    check_options(args)
    folder = model_folder(args.model, args.runs_dir)
    try:
        model = open_model(folder)
    except EvalInputError as err:
        raise GenerateInputError(str(err)) from None
    tok_file = Path(args.tokenizer) if args.tokenizer else find_upwards(folder, TOKENIZER_FILE)
    if tok_file is None or not tok_file.is_file():
        raise GenerateInputError(f"{folder}: no {TOKENIZER_FILE} in it or its run directory; "
                                 "pass --tokenizer")
    try:
        tok = load_tokenizer(tok_file)
    except DataError as err:
        raise GenerateInputError(str(err)) from None
    if len(tok) > model.config.vocab_size:
        raise GenerateInputError(f"{tok_file}: {len(tok)} tokens but the model has vocab_size "
                                 f"{model.config.vocab_size}; use the run's own tokenizer.json")
    prompt = fit_context(tok.encode(args.prompt, add_special_tokens=False), model.config,
                         args.max_new_tokens)
    if args.no_think:
        ids = greedy_generate(model, [prompt], args.max_new_tokens, tok.eos_token_id,
                              tok.pad_token_id)[0]
        return tok.decode(ids), []
    if getattr(model, "thoughts", None) is None:
        raise GenerateInputError(f"{folder}: the model has no thought head (not a Quiet-STaR "
                                 "model); use --no-think")
    (gen,) = think_generate(model, [prompt], args.max_new_tokens, tok.eos_token_id,
                            tok.pad_token_id, "sample", args.temperature, args.seed)
    shown = [(tok.decode([t]), tok.decode(th)) for t, th in zip(gen.tokens, gen.thoughts)]
    return tok.decode(gen.tokens), shown


def main(argv: list[str] | None = None) -> int:
    """Parse, generate, print the answer (stdout) and thoughts (stderr). 0 ok, 2 bad input."""
    args = build_parser().parse_args(argv)
    try:
        text, thoughts = generate(args)
    except GenerateInputError as err:
        print(f"forge generate: {err}", file=sys.stderr)
        return 2
    if args.show_thoughts:
        for token, thought in thoughts:
            print(f"<|startofthought|>{thought}<|endofthought|> -> {token!r}", file=sys.stderr)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
