"""`python -m forge.bench cognate_vs_plain`: the default Cognate specialist against a plain
transformer of the same parameter count, trained on the same data for the same wall-clock time.

Equal time is measured as CPU time of this process (`time.process_time`), 360 s = 180 s on both
cores of an idle 2-core machine: on a machine shared with other jobs, wall time would hand one arm
more compute than the other.

Both arms: the default config's data, tokenizer and task mix (the `adaptive` specialisation's
batches: half text, half tasks), the same threads, a warm-up + cosine schedule over the steps the
budget allows (measured on the first 10 steps), gradient clip 1.0. Cognate trains with its Phase 1
MuGrokfast preset; the plain transformer (HF Llama, `forge.bench.plain`, layers matched to the
parameter count) with AdamW at its usual 1e-3 and at Cognate's 3e-3, the better reported as the
control. Scored on validation: answer bits per byte (mean, and per task), exact match per task with
95% Wilson intervals, and the prompt-swap gain (forge.eval.context).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from forge.config import DEFAULT_CONFIG, load
from forge.eval.context import prompt_swap_gain
from forge.eval.evaluate import per_task_sample, task_entries
from forge.models import CognateForCausalLM, cognate_config_from
from forge.optim import build_optimizer
from forge.phases.cognate import SpecialistBatches, specialise, task_weights_for
from forge.phases.common import prepare_data
from forge.training.loop import optimizer_step, scale_lr
from forge.training.schedule import warmup_cosine

REPEATS = 1
UNITS = {"budget_s": "CPU s"}


def _train(model, opt, batches, budget_s: float, hooks=(lambda: None, lambda: None)) -> int:
    """Train for `budget_s` seconds of this process's CPU time; returns the steps done."""
    started, step, planned = time.process_time(), 0, None
    while time.process_time() - started < budget_s:
        if step == 10:  # the schedule's length from the measured step time
            planned = int(budget_s / ((time.process_time() - started) / 10))
        total = planned or max(10, int(budget_s))
        scale_lr(opt, warmup_cosine(step, total, max(1, total // 10), 0.1))
        optimizer_step(model, opt, batches(step), hooks)
        step += 1
    return step


def _score(model, data, eval_cfg, per_task: int) -> dict[str, float]:
    model.eval()
    sample = per_task_sample(data.tasks.validation, per_task)
    with torch.no_grad():
        out = task_entries(model, data.tokenizer, sample, eval_cfg)
        gain = prompt_swap_gain(model, data.tokenizer, sample)
    out.update({"prompt_swap_gain": gain.mean, "prompt_swap_stderr": gain.stderr})
    return out


def measure(quick: bool) -> dict[str, float]:
    """Three arms (Cognate, plain at lr 1e-3 and 3e-3), each for the same wall time."""
    from forge.bench.plain import matched_layers, plain_transformer

    torch.set_num_threads(2)
    cfg = load(DEFAULT_CONFIG)
    budget, per_task = (20.0, 4) if quick else (360.0, 40)  # CPU seconds over 2 threads
    data = prepare_data(cfg, Path(tempfile.mkdtemp(prefix="forge-cvp-")))
    spec = next(s for s in cfg.phase("cognate").specialisations if s.name == "adaptive")
    batches = SpecialistBatches(data, spec, cfg.phase("cognate").train.batch_size,
                                cfg.data.seq_len, task_weights_for(spec, cfg))
    config = cognate_config_from(cfg.model, len(data.tokenizer))
    eval_cfg = cfg.data.eval
    out: dict[str, float] = {"budget_s": budget}
    torch.manual_seed(0)
    cognate = CognateForCausalLM(config)
    specialise(cognate, spec)
    opt = build_optimizer(cognate, cfg.optim.cognate)
    out["cognate/steps"] = _train(cognate, opt, batches, budget, opt.hooks())
    out.update({f"cognate/{k}": v for k, v in _score(cognate, data, eval_cfg, per_task).items()})
    layers = matched_layers(config)
    for lr in (1e-3, 3e-3):
        torch.manual_seed(0)
        plain = plain_transformer(config, layers)
        opt = torch.optim.AdamW(plain.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
        tag = f"plain_lr{lr:g}"
        out[f"{tag}/steps"] = _train(plain, opt, batches, budget)
        out.update({f"{tag}/{k}": v for k, v in _score(plain, data, eval_cfg, per_task).items()})
    out["params/cognate"] = sum(p.numel() for p in cognate.parameters())
    out["params/plain"] = sum(p.numel() for p in plain.parameters())
    out["plain_layers"] = layers
    return out
