"""`python -m forge.bench default_run`: the README's `python -m forge.submit`, timed end to end.

Runs the default pipeline (config/pipeline.yaml) in a subprocess with a fresh local Ray
(`--address local`), then reads the registry: wall time of the command and of each phase, whether
each phase's output was adopted and its key metric, each Phase 1 specialist's validation bits per
byte against the untrained seed model's, and the bytes of the model the run hands back.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from forge.config import DEFAULT_CONFIG, load
from forge.registry import RegistryStore

PHASES = load(DEFAULT_CONFIG).pipeline.phases
UNITS = {"command_wall_s": "s", "seed_val_bits_per_byte": "bits/byte",
         "best_val_bits_per_byte": "bits/byte", "worst_val_bits_per_byte": "bits/byte",
         "models_beating_seed": "count", "final_model_bytes": "bytes",
         **{f"{p}_wall_s": "s" for p in PHASES}, **{f"{p}_adopted": "1/0" for p in PHASES}}
REPEATS = 1
NAMES = ("reasoning", "memory", "adaptive")


def run_default(runs_dir: Path, extra: list[str]) -> float:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "forge.submit", "--address", "local",
                           "--runs-dir", str(runs_dir), *extra], env=env, capture_output=True,
                          text=True, timeout=1800)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"forge.submit exited {done.returncode}: {done.stderr[-2000:]}")
    return wall


def phase_numbers(store: RegistryStore, run_id: str) -> dict[str, float]:
    """Per phase: wall time, adopted (1/0) and its key metric (named in the phase summary)."""
    out = {}
    for name, row in store.latest_phases(run_id).items():
        summary = json.loads(row["summary"] or "{}")
        out[f"{name}_wall_s"] = row["ended"] - row["started"]
        out[f"{name}_adopted"] = float(bool(summary.get("adopted")))
        if summary.get("key_metric"):
            out[f"{name}_key_metric"] = summary["key_metric"][1]
    return out


def measure(quick: bool) -> dict[str, float]:
    # 10 steps cannot teach a prompt: the quick run measures the context check without applying it
    extra = (["--set", "phases.cognate.train.steps=10",
              "--set", "phases.cognate.min_prompt_swap_gain=null"] if quick else [])
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        wall = run_default(runs_dir, extra)
        store = RegistryStore(runs_dir / "registry.db", readonly=True)
        (run,) = store.list_runs()
        phases = phase_numbers(store, run["id"])
        bpb = {m["model"]: m["value"] for m in store.metrics(run["id"], phase="cognate",
                                                              name="text/bits_per_byte")}
        final = json.loads(store.latest_phases(run["id"])[PHASES[-1]]["summary"])
        context = {f"{m['model']}_{m['name'].split('/')[-1]}": m["value"]
                   for m in store.metrics(run["id"], phase="cognate")
                   if m["name"] in ("context/prompt_swap_gain", "context/prompt_swap_stderr",
                                    "tasks/exact_match")}
    trained = [bpb[n] for n in NAMES]
    return {"command_wall_s": wall, **phases,
            "seed_val_bits_per_byte": bpb["seed"], "best_val_bits_per_byte": min(trained),
            "worst_val_bits_per_byte": max(trained),
            "models_beating_seed": float(sum(b < bpb["seed"] for b in trained)),
            "final_model_bytes": float(final.get("size_bytes", 0)), **context}


def setup(quick: bool) -> dict:
    return {"command": "python -m forge.submit --address local"
                       + (" --set phases.cognate.train.steps=10 --set "
                          "phases.cognate.min_prompt_swap_gain=null" if quick else ""),
            "phases": " -> ".join(PHASES),
            "key_metrics": "cognate: best val bits/byte; evomerge: champion val fitness; "
                           "quiet_star: val answer bits/byte with thoughts; bitnet: val bits/byte "
                           "after STE",
            "goal": "every phase within minutes; cognate specialists beat the seed (3)"}
