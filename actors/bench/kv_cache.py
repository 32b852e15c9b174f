"""`python -m forge.bench kv_cache`: generated tokens/s with and without the KV cache.

Batch-1 greedy decoding through the server's engine (`forge.serve.engine`, what `forge serve`
runs per request), with the cache (`forge.models.cache`: the prompt read once, then one token
per step) and without it (every token re-reads the prefix), at several numbers of new tokens.
Tokens/s counts generated tokens over the whole call (prompt reading included). Model: the
default pipeline's Cognate (config/pipeline.yaml: context 256, window 64, memory chunk 16),
randomly initialised (speed does not depend on training), fp and packed ternary; one torch thread,
as one serve replica runs it; the best of two rounds taken in turns. The longest run fills the
context: prompt + new tokens = 256.
It needs no Ray; it lives beside the serve benchmark to share its model builder.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from actors.bench.serve import _RUN, temporary_run

LENGTHS = (32, 128, 240)  # new tokens; 16-token prompt + 240 = the default context of 256
QUICK_LENGTHS = (8, 24)
KINDS = {"fp": LENGTHS, "packed": (128,)}  # the packed model's cost ratio is the same per token
PROMPT_TOKENS = 16
REPEATS = 1
ROUNDS = 2  # cached and uncached take turns; the best round of each
UNITS = {"load_average_start": "runnable procs (1 min)", "load_average_end": "runnable procs (1 min)"}
for _kind, _lengths in KINDS.items():
    for _n in set(_lengths) | set(QUICK_LENGTHS):
        UNITS |= {f"{_kind}_{_n}_cached_tokens_per_s": "tokens/s",
                  f"{_kind}_{_n}_uncached_tokens_per_s": "tokens/s",
                  f"{_kind}_{_n}_speedup": "ratio"}


def _engines(path: Path):
    from forge.serve.engine import CompletionEngine
    from forge.serve.source import load_source, resolve_model

    model, tok = load_source(resolve_model(str(path)))
    out = {}
    for cached in (True, False):
        engine = CompletionEngine(model, tok, path.name, use_cache=cached)
        engine.banned.append(engine.eos_id)  # always decode n tokens: the clock needs a fixed count
        out[cached] = engine
    return out


def tokens_per_s(engine, prompt: list[int], n: int) -> tuple[float, str]:
    """Generated tokens per second of one greedy completion of n tokens, and its text."""
    from forge.serve.engine import SamplingParams

    start = time.perf_counter()
    (choice,) = engine.complete(prompt, SamplingParams(max_tokens=n, temperature=0.0))
    return choice["tokens"] / (time.perf_counter() - start), choice["text"]


def _best_of(engines: dict, prompt: list[int], n: int, rounds: int) -> tuple[float, float]:
    """Best tokens/s with and without the cache over `rounds` rounds taking turns (the shared
    machine's load changes from minute to minute)."""
    best = {True: 0.0, False: 0.0}
    for _ in range(rounds):
        texts = {}
        for cached, engine in engines.items():
            rate, texts[cached] = tokens_per_s(engine, prompt, n)
            best[cached] = max(best[cached], rate)
        if texts[True] != texts[False]:  # the cache is exact: a mismatch is a bug, not noise
            raise RuntimeError(f"kv_cache: {n} tokens: cached and uncached text differ")
    return best[True], best[False]


def measure(quick: bool) -> dict[str, float]:
    torch.set_num_threads(1)
    out = {"load_average_start": os.getloadavg()[0]}
    for kind, lengths in KINDS.items():
        engines = _engines(_RUN["run"] / kind)
        prompt = list(range(100, 100 + PROMPT_TOKENS))  # any 16 ordinary token ids
        tokens_per_s(engines[True], prompt, 2)  # warm-up
        for n in QUICK_LENGTHS if quick else lengths:
            fast, slow = _best_of(engines, prompt, n, rounds=1 if quick else ROUNDS)
            out |= {f"{kind}_{n}_cached_tokens_per_s": fast,
                    f"{kind}_{n}_uncached_tokens_per_s": slow, f"{kind}_{n}_speedup": fast / slow}
        if quick:
            break
    out["load_average_end"] = os.getloadavg()[0]
    return out


def setup(quick: bool) -> dict:
    _, params = temporary_run("forge-bench-kv-")
    return {"cores": os.cpu_count(), "model": f"default pipeline Cognate, {params:,} parameters, "
            "untrained; fp and packed ternary", "prompt_tokens": PROMPT_TOKENS,
            "decoding": "batch 1, greedy, through forge.serve.engine, 1 torch thread",
            "new_tokens": list(QUICK_LENGTHS if quick else LENGTHS)}
