"""`python -m forge.bench serve`: what serving costs, on loopback.

(a) `forge serve` on Ray Serve with 1 and 2 replicas (1 CPU, 1 torch thread each): a bounded pool
    of concurrent clients posts /v1/completions; p50/p99 latency, requests/s and generated
    tokens/s over the run.
(b) Batch-1 milliseconds per generated token, in process, of the packed ternary artifact against
    the fp artifact it was made from. `forge.load_model` unpacks the trits once at load
    (no ternary kernel); the packed model still quantises activations to 8 bits per token.
Model: the default pipeline's Cognate (config/pipeline.yaml), randomly initialised (speed does not
depend on training), a 2048-token BPE trained on pydoc topics. The engine decodes with the KV
cache (`python -m forge.bench kv_cache` measures it against re-reading the prefix).
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ray
import torch

UNITS = {}
for r in (1, 2):
    UNITS.update({f"r{r}_p50_latency_s": "s", f"r{r}_p99_latency_s": "s",
                  f"r{r}_requests_per_s": "req/s", f"r{r}_tokens_per_s": "tokens/s"})
UNITS.update({"fp_ms_per_token": "ms", "packed_ms_per_token": "ms", "packed_over_fp": "ratio",
              "fp_25m_ms_per_token": "ms", "packed_25m_ms_per_token": "ms",
              "packed_over_fp_25m": "ratio", "two_over_one_replica_tokens": "ratio",
              "load_average_start": "runnable procs (1 min)",
              "load_average_end": "runnable procs (1 min)"})
REPEATS = 1
PROMPT = "The quick brown fox jumps over the lazy dog. Question: what does the fox do?"
_RUN: dict[str, Path] = {}


def sizes(quick: bool) -> dict[str, int]:
    """Requests, concurrent clients and tokens per request."""
    return {"requests": 8 if quick else 40, "concurrency": 4, "max_tokens": 8 if quick else 24,
            "decode_tokens": 8 if quick else 32}


def build_run(root: Path, config: Path | None = None, name: str = "run") -> Path:
    """root/name/{tokenizer.json, fp, packed}: the config's model (default: the pipeline's),
    fp and packed ternary."""
    import pydoc_data.topics

    from forge.config import DEFAULT_CONFIG, load
    from forge.data.tokenizer import build_bpe
    from forge.models import CognateForCausalLM, cognate_config_from
    from forge.pipeline.artifacts import save_artifact
    from forge.quant import convert_to_ternary, save_ternary

    run = root / name
    run.mkdir(parents=True)
    tok = build_bpe(list(pydoc_data.topics.topics.values()), 2048)
    tok.save(str(run / "tokenizer.json"))
    torch.manual_seed(0)
    model = CognateForCausalLM(cognate_config_from(load(config or DEFAULT_CONFIG).model,
                                                   tok.get_vocab_size())).eval()
    save_artifact(model, run / "fp")
    convert_to_ternary(model)
    save_ternary(model.eval(), run / "packed")
    return run


def _engine(path: Path):
    from forge.serve.engine import CompletionEngine
    from forge.serve.source import load_source, resolve_model

    model, tok = load_source(resolve_model(str(path)))
    engine = CompletionEngine(model, tok, path.name)
    engine.banned.append(engine.eos_id)  # always decode n tokens: the clock needs a fixed count
    return engine


def ms_per_token(run: Path, n_tokens: int, rounds: int, prompt: str = PROMPT) -> dict[str, float]:
    """Batch-1 greedy decoding through the server's engine, fp and packed taking turns (the
    machine's load changes over time); the best round of each, in ms per generated token."""
    from forge.serve.engine import SamplingParams

    engines = {kind: _engine(run / kind) for kind in ("fp", "packed")}
    ids = engines["fp"].encode(prompt)
    best = {kind: float("inf") for kind in engines}
    for _ in range(rounds):
        for kind, engine in engines.items():
            engine.complete(ids, SamplingParams(max_tokens=2, temperature=0.0))  # warm-up
            start = time.perf_counter()
            (choice,) = engine.complete(ids, SamplingParams(max_tokens=n_tokens, temperature=0.0))
            ms = 1000 * (time.perf_counter() - start) / choice["tokens"]
            best[kind] = min(best[kind], ms)
    return best


def _post(url: str, body: dict) -> tuple[float, int]:
    req = urllib.request.Request(f"{url}/v1/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        usage = json.loads(r.read())["usage"]
    return time.perf_counter() - start, usage["completion_tokens"]


def load_test(url: str, s: dict) -> dict[str, float]:
    """`requests` completions from `concurrency` client threads; latency and throughput."""
    bodies = [{"prompt": s.get("prompt", PROMPT), "max_tokens": s["max_tokens"], "temperature": 0.8, "seed": i}
              for i in range(s["requests"])]
    for b in bodies[:2]:
        _post(url, b)  # warm-up: first requests pay for the proxy's routing tables
    start = time.perf_counter()
    with ThreadPoolExecutor(s["concurrency"]) as pool:
        results = list(pool.map(lambda b: _post(url, b), bodies))
    wall = time.perf_counter() - start
    lat = sorted(r[0] for r in results)
    return {"p50_latency_s": statistics.median(lat),
            "p99_latency_s": lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))],
            "requests_per_s": len(lat) / wall, "tokens_per_s": sum(r[1] for r in results) / wall}


def serve_replicas(run: Path, replicas: int, s: dict[str, int]) -> dict[str, float]:
    """Deploy `replicas` 1-CPU replicas of the packed model, load-test, shut Serve down."""
    import socket

    from ray import serve

    from actors.serve import deploy
    from forge.serve.cli import ServeOptions
    from forge.serve.source import resolve_model

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = ServeOptions(resolve_model(str(run / "packed")), port=port, replicas=replicas,
                           num_cpus=1.0)
    url = deploy(options)
    try:
        return load_test(url, s)
    finally:
        serve.shutdown()


def measure(quick: bool) -> dict[str, float]:
    s = sizes(quick)
    run = _RUN["run"]
    torch.set_num_threads(1)  # as one replica runs it
    # The machine is shared: the load average says how many other processes competed.
    out = {"load_average_start": os.getloadavg()[0]}
    small = ms_per_token(run, s["decode_tokens"], rounds=1 if quick else 3)
    out |= {"fp_ms_per_token": small["fp"], "packed_ms_per_token": small["packed"],
            "packed_over_fp": small["packed"] / small["fp"]}
    if "25m" in _RUN:  # the spec's model size: matmuls weigh more next to the 8-bit activations
        big = ms_per_token(_RUN["25m"], 6, rounds=2)
        out |= {"fp_25m_ms_per_token": big["fp"], "packed_25m_ms_per_token": big["packed"],
                "packed_over_fp_25m": big["packed"] / big["fp"]}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=75 * 1024**2, _node_ip_address="127.0.0.1")
    try:
        for replicas in (1, 2):
            for k, v in serve_replicas(run, replicas, s).items():
                out[f"r{replicas}_{k}"] = v
    finally:
        ray.shutdown()
    out["two_over_one_replica_tokens"] = out["r2_tokens_per_s"] / out["r1_tokens_per_s"]
    out["load_average_end"] = os.getloadavg()[0]
    return out


def temporary_run(prefix: str) -> tuple[Path, int]:
    """The default model's run in a temporary folder removed at exit (as _RUN["run"]); the folder
    and the model's parameter count."""
    import atexit

    from forge import load_model

    root = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, root, True)
    _RUN["run"] = build_run(root)
    return root, sum(p.numel() for p in load_model(_RUN["run"] / "fp").parameters())


def setup(quick: bool) -> dict:
    root, params = temporary_run("forge-bench-serve-")
    if not quick:
        from forge.config import CONFIG_DIR

        _RUN["25m"] = build_run(root, CONFIG_DIR / "presets" / "25m-6gb.yaml", "25m")
    return {**sizes(quick), "cores": os.cpu_count(), "model": f"default pipeline Cognate, {params:,} parameters, untrained",
            "replica": "1 CPU, 1 torch thread; packed ternary artifact",
            "prompt_tokens": "see PROMPT in actors/bench/serve.py",
            "kv_cache": "on (forge.models.cache)"}
