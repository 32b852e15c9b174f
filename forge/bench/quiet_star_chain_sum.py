"""`python -m forge.bench quiet_star_chain_sum`: the chain_sum preset of Phase 3, in one process.

Runs `config/presets/quiet-star-chain-sum.yaml` without Ray: the preset's Phase 1 specialist
(chain_sum with three one-digit terms) is trained from its seed, then Phase 3 runs with the
preset's settings and reports, on the validation split, answer bits per byte and exact match of
(a) thinking, (b) thoughts off, (c) random thoughts, the input model's bits and the gate's
verdict. The same run on Ray: `python -m forge.submit --config <the preset>`.
One torch thread: on a shared, loaded 2-core machine OpenMP threads stall (tests/conftest.py).
`--quick` cuts every step count to a smoke test.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from forge.bench.quiet_star import _starting_model, phase_table
from forge.config import PipelineConfig, load
from forge.phases.common import prepare_data
from forge.phases.quiet_star_config import PHASE

PRESET = Path(__file__).resolve().parents[2] / "config" / "presets" / "quiet-star-chain-sum.yaml"
REPEATS = 1
UNITS = {"phase_seconds": "s", "train_seconds": "s", "a_think_bits_per_byte": "bits/byte",
         "b_off_bits_per_byte": "bits/byte", "c_random_bits_per_byte": "bits/byte",
         "input_bits_per_byte": "bits/byte", "a_think_exact_match": "fraction",
         "b_off_exact_match": "fraction", "c_random_exact_match": "fraction", "a_mix_w": "w",
         "adopted": "0/1", "gain_vs_off": "bits/byte", "gain_vs_off_se": "bits/byte",
         "gain_vs_random": "bits/byte", "gain_vs_random_se": "bits/byte"}
QUICK = ["phases.cognate.train.steps=4", "phases.quiet_star.train.steps=2",
         "phases.quiet_star.eval.max_examples=4", "phases.quiet_star.eval.accuracy_examples=1"]


def _config(quick: bool) -> PipelineConfig:
    return load(PRESET, QUICK if quick else [])


def measure(quick: bool) -> dict[str, float]:
    torch.set_num_threads(1)
    cfg = _config(quick)
    tmp = Path(tempfile.mkdtemp(prefix="quiet-star-chain-sum-"))
    data = prepare_data(cfg, tmp)
    state = {"cfg": cfg, "data": data, "dir": tmp, "input": _starting_model(cfg, data, tmp)}
    return phase_table(state)  # gains: bits/byte saved by thinking over each control


def setup(quick: bool) -> dict:
    cfg = _config(quick)
    s, c = cfg.phase(PHASE), cfg.phase("cognate")
    task = cfg.data.tasks[0]
    return {"config": "config/presets/quiet-star-chain-sum.yaml" + (" (--quick)" if quick else ""),
            "task": f"{task.name} {dict(task.config)}",
            "starting_model": f"Phase 1 specialist '{c.specialisations[0].name}', "
                              f"{c.train.steps} steps x batch {c.train.batch_size}",
            "thoughts": f"length {s.thoughts.length}, {s.thoughts.per_position} per position, "
                        f"n_ahead {s.thoughts.n_ahead}",
            "phase_train": f"{s.train.steps} steps x batch {s.train.batch_size}",
            "eval": f"validation: {s.eval.max_examples} examples for bits, "
                    f"{s.eval.accuracy_examples} for exact match",
            "gate": f"adopt iff (a) < (b) - {s.gate.margin} and (a) < (c) - {s.gate.margin}",
            "torch_threads": 1}
