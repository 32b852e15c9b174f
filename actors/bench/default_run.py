"""`python -m forge.bench default_run`: the README's `python -m forge.submit`, timed end to end.

Runs the default pipeline (config/pipeline.yaml: Phase 1) in a subprocess with a fresh local Ray
(`--address local`), then reads the registry: wall time of the command and of the phase, and each
specialist's validation bits per byte against the untrained seed model's. Goal (issue 5): Phase 1
in under 3 minutes on this machine, every specialist better than the seed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from forge.registry import RegistryStore

UNITS = {"command_wall_s": "s", "phase_wall_s": "s", "seed_val_bits_per_byte": "bits/byte",
         "best_val_bits_per_byte": "bits/byte", "worst_val_bits_per_byte": "bits/byte",
         "models_beating_seed": "count"}
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


def measure(quick: bool) -> dict[str, float]:
    extra = ["--set", "phases.cognate.train.steps=10"] if quick else []
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        wall = run_default(runs_dir, extra)
        store = RegistryStore(runs_dir / "registry.db", readonly=True)
        (run,) = store.list_runs()
        phase = store.latest_phases(run["id"])["cognate"]
        bpb = {m["model"]: m["value"] for m in store.metrics(run["id"], name="text/bits_per_byte")}
    trained = [bpb[n] for n in NAMES]
    return {"command_wall_s": wall, "phase_wall_s": phase["ended"] - phase["started"],
            "seed_val_bits_per_byte": bpb["seed"], "best_val_bits_per_byte": min(trained),
            "worst_val_bits_per_byte": max(trained),
            "models_beating_seed": float(sum(b < bpb["seed"] for b in trained))}


def setup(quick: bool) -> dict:
    return {"command": "python -m forge.submit --address local"
                       + (" --set phases.cognate.train.steps=10" if quick else ""),
            "goal": "phase_wall_s < 180 and models_beating_seed == 3"}
