"""`python -m forge.bench evomerge`: does Phase 2's Ray Tune evaluation scale, and how long do
workers wait at the generation barrier?

The real phase (`forge.submit --phases evomerge`) runs twice on a fresh local Ray, from the same
three parents: (1) 1 CPU, so one trial at a time; (2) 2 CPUs, two trials at once. Each trial
stamps when it starts and ends scoring its candidate; from those stamps:
- candidates per minute = candidates scored / (last end - first start);
- idle share = 1 - busy trial time / (concurrent trials x that span): time a worker slot waits
  for the slowest candidate of a generation, for Tune to pause, re-configure and restart trials,
  and for the evolution step itself. Goals (issue 6): speed-up >= 1.8x, idle share < 10%.
Per-method merge time on 25m-sized state dicts comes from `forge.bench merge` (reported here
beside it, measured in the same call).

Parents: the default config's model (config/pipeline.yaml), one random seed plus three
different Gaussian task vectors (sigma 2% of each tensor's mean magnitude): the time to build
and score a candidate does not depend on what the weights learned.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import ray
import torch

from forge import submit
from forge.bench.merge import UNITS as MERGE_UNITS
from forge.config import DEFAULT_CONFIG, load
from forge.models import CognateForCausalLM, cognate_config_from
from forge.phases.common import prepare_data
from forge.pipeline import save_artifact
from forge.registry import RegistryStore

UNITS = {"one_trial_candidates_per_min": "1/min", "two_trials_candidates_per_min": "1/min",
         "speedup": "x", "one_trial_idle_share": "share", "two_trials_idle_share": "share",
         "one_trial_phase_s": "s", "two_trials_phase_s": "s", "one_trial_workers": "trials",
         "two_trials_workers": "trials", **{f"merge_{k}": u for k, u in MERGE_UNITS.items()}}
REPEATS = 1
LAYOUTS = {"one_trial": 1, "two_trials": 2}


def generations(quick: bool) -> int:
    return 1 if quick else 3


def sets(quick: bool) -> list[str]:
    return ["wandb.mode=disabled", "ray.include_dashboard=false",
            f"phases.evomerge.evolve.generations={generations(quick)}"]


def make_parents(root: Path, quick: bool) -> list[str]:
    cfg = load(DEFAULT_CONFIG, sets(quick))
    vocab = len(prepare_data(cfg, root / "tok").tokenizer)
    torch.manual_seed(0)
    seed = CognateForCausalLM(cognate_config_from(cfg.model, vocab))
    save_artifact(seed, root / "parents" / "seed", metadata={"vocab_size": vocab})
    paths = []
    for i, name in enumerate(("reasoning", "memory", "adaptive")):
        g = torch.Generator().manual_seed(i + 1)
        model = CognateForCausalLM(seed.config)
        model.load_state_dict({k: v + 0.02 * v.abs().mean() * torch.randn(v.shape, generator=g)
                               for k, v in seed.state_dict().items()})
        save_artifact(model, root / "parents" / name,
                      metadata={"vocab_size": vocab, "seed_dir": "../seed"})
        paths.append(str(root / "parents" / name))
    return paths


def run_layout(cpus: int, parents: list[str], runs_dir: Path, quick: bool) -> dict[str, float]:
    args = ["--runs-dir", str(runs_dir), "--phases", "evomerge", "--address", "local",
            "--set", "pipeline.phases=[evomerge]", "--set", f"ray.num_cpus={cpus}"]
    for s in sets(quick):
        args += ["--set", s]
    for p in parents:
        args += ["--input", p]
    if submit.main(args) != 0:
        raise RuntimeError(f"evomerge benchmark: the phase failed on {cpus} CPU(s)")
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    (run,) = store.list_runs()
    row = store.latest_phases(run["id"])["evomerge"]
    timing = json.loads(row["summary"])["details"]["timing"]
    return {"candidates_per_min": timing["candidates_per_min"], "idle_share": timing["idle_share"],
            "phase_s": row["ended"] - row["started"], "workers": timing["workers"]}


def measure(quick: bool) -> dict[str, float]:
    from forge.bench import merge as merge_bench

    if ray.is_initialized():
        raise RuntimeError("evomerge benchmark: Ray is already initialised in this process")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        parents = make_parents(root, quick)
        for name, cpus in LAYOUTS.items():
            result = run_layout(cpus, parents, root / name, quick)
            out.update({f"{name}_{k}": v for k, v in result.items()})
    out["speedup"] = out["two_trials_candidates_per_min"] / out["one_trial_candidates_per_min"]
    out.update({f"merge_{k}": v for k, v in merge_bench.measure(quick).items()})
    return out


def setup(quick: bool) -> dict:
    cfg = load(DEFAULT_CONFIG, sets(quick))
    s = cfg.phase("evomerge")
    return {"generations": generations(quick) + 1, "population": s.evolve.population,
            "fitness_sample": {"documents": s.fitness_eval.max_documents,
                               "task_examples_per_task": s.fitness_eval.max_task_examples,
                               "new_tokens": s.fitness_eval.max_new_tokens},
            "trial_cpus": s.trial_cpus, "layouts": "1 CPU (1 trial) vs 2 CPUs (2 trials)",
            "merge_model": "default config's model (--quick)" if quick else
            "25m-6gb preset, vocab 32768 (as forge.bench merge)",
            "goals": "speedup >= 1.8, idle share < 0.10"}
