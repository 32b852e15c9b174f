"""`python -m forge.bench model`: Cognate size, training throughput and memory on this machine.

Metrics (per repetition): forward+backward tokens/s of one full training step (deep supervision,
ACT and gate terms, MuGrokfast step) for the default config (`config/pipeline.yaml`) and the
25m preset (`config/presets/25m-6gb.yaml`), and eval-mode forward tokens/s of the default.

Recursion overhead: one Cognate step applies its network f (n_layers blocks) P = S (n + 1) T
times, S (n + 1) of them with gradient and the rest without. A plain pre-norm transformer of the
same width, depth and vocabulary (HF Llama, `forge.bench.plain`) doing the same work would take
    ideal = S (n + 1) * t_plain(fwd + bwd + AdamW step) + S (n + 1) (T - 1) * t_plain(fwd)
and `default_step_over_ideal` = t_cognate / ideal (goal <= 1.3; each pass counts a whole plain
model, embedding and head included, which flatters Cognate a little).
Facts: parameter counts, and `estimate_training_memory` for three 25m models on one 6 GiB GPU.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from forge.config import DEFAULT_CONFIG, load
from forge.models import CognateConfig, CognateForCausalLM, cognate_config_from
from forge.models.memory_estimate import (estimate_training_memory, largest_batch,
                                          measure_saved_activation_bytes)
from forge.optim import build_optimizer

PRESET_25M = Path(DEFAULT_CONFIG).parent / "presets" / "25m-6gb.yaml"
GPU_BYTES = 6 * 2**30  # the target card
REPEATS = 3
UNITS = {"default_train_tokens_per_s": "tokens/s", "default_eval_tokens_per_s": "tokens/s",
         "25m_train_tokens_per_s": "tokens/s", "default_step_s": "s", "25m_step_s": "s",
         "default_step_over_ideal": "x", "default_cognate_step_ms": "ms", "plain_step_ms": "ms",
         "plain_forward_ms": "ms"}


def _config(path: Path) -> tuple[CognateConfig, object]:
    cfg = load(path)
    return cognate_config_from(cfg.model, cfg.data.vocab_size), cfg.optim.cognate


def _shapes(quick: bool) -> dict[str, tuple[int, int]]:
    """(batch, seq) per model for the throughput runs."""
    return {"default": (4, 64) if quick else (8, 128), "25m": (1, 64) if quick else (2, 128)}


def _train_rate(path: Path, batch: int, seq: int) -> tuple[float, float]:
    """(tokens/s, seconds) of one timed training step after one warm-up step."""
    config, optim_cfg = _config(path)
    torch.manual_seed(0)
    model = CognateForCausalLM(config).train()
    opt = build_optimizer(model, optim_cfg)
    ids = torch.randint(0, config.vocab_size, (batch, seq))
    elapsed = 0.0
    for _ in range(2):  # the first step warms up allocator and kernels
        start = time.perf_counter()
        loss = model(ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.filter_gradients()
        opt.step()
        opt.qk_clip()
        elapsed = time.perf_counter() - start
    return batch * seq / elapsed, elapsed


def _median_time(step, repeats: int = 5) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def recursion_overhead(path: Path, batch: int, seq: int) -> dict[str, float]:
    """Cognate step time against the ideal cost of its passes on a plain transformer."""
    from forge.bench.plain import plain_transformer

    config, optim_cfg = _config(path)
    torch.manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (batch, seq))
    cognate = CognateForCausalLM(config).train()
    opt = build_optimizer(cognate, optim_cfg)
    plain = plain_transformer(config).train()
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=1e-3)

    def cognate_step():
        loss = cognate(ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.filter_gradients()
        opt.step()
        opt.qk_clip()

    def plain_step():
        loss = plain(input_ids=ids, labels=ids).loss
        plain_opt.zero_grad()
        loss.backward()
        plain_opt.step()

    def plain_forward():
        with torch.no_grad():
            plain(input_ids=ids)

    t_cog, t_plain, t_fwd = (_median_time(f) for f in (cognate_step, plain_step, plain_forward))
    grad_passes = config.trm_supervision_steps * (config.trm_n + 1)
    free_passes = grad_passes * (config.trm_T - 1)
    ideal = grad_passes * t_plain + free_passes * t_fwd
    return {"default_step_over_ideal": t_cog / ideal, "default_cognate_step_ms": 1e3 * t_cog,
            "plain_step_ms": 1e3 * t_plain, "plain_forward_ms": 1e3 * t_fwd,
            "default_passes_with_grad": float(grad_passes),
            "default_passes_without_grad": float(free_passes)}


def _eval_rate(path: Path, batch: int, seq: int) -> float:
    config, _ = _config(path)
    model = CognateForCausalLM(config).eval()
    ids = torch.randint(0, config.vocab_size, (batch, seq))
    with torch.no_grad():
        model(ids)
        start = time.perf_counter()
        model(ids)
    return batch * seq / (time.perf_counter() - start)


def measure(quick: bool) -> dict[str, float]:
    """One repetition: training and eval throughput of the default and 25m configs."""
    shapes = _shapes(quick)
    default_rate, default_s = _train_rate(DEFAULT_CONFIG, *shapes["default"])
    big_rate, big_s = _train_rate(PRESET_25M, *shapes["25m"])
    return {"default_train_tokens_per_s": default_rate, "default_step_s": default_s,
            "default_eval_tokens_per_s": _eval_rate(DEFAULT_CONFIG, *shapes["default"]),
            "25m_train_tokens_per_s": big_rate, "25m_step_s": big_s,
            **recursion_overhead(DEFAULT_CONFIG, *shapes["default"])}


def _params(config: CognateConfig) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in CognateForCausalLM(config).parameters())


def _gpu_plan(config: CognateConfig, seq: int) -> dict[str, object]:
    """What three 25m trainings need on one 6 GiB GPU, with and without checkpointing."""
    facts: dict[str, object] = {}
    for ckpt in (False, True):
        tag = "checkpointing" if ckpt else "no_checkpointing"
        batch = largest_batch(config, seq, GPU_BYTES, n_models=3, checkpointing=ckpt)
        one = estimate_training_memory(config, max(batch, 1), seq, checkpointing=ckpt)
        facts[f"25m_3x_max_batch_seq{seq}_{tag}"] = batch
        facts[f"25m_estimate_mib_batch{max(batch, 1)}_seq{seq}_{tag}"] = one.as_mib()
        facts[f"25m_3x_total_gib_{tag}"] = round(3 * (one.total + 400 * 2**20) / 2**30, 2)
    return facts


def setup(quick: bool) -> dict[str, object]:
    """Static facts: sizes, the 25m memory plan, and the estimate checked on the default model."""
    default, _ = _config(DEFAULT_CONFIG)
    big, _ = _config(PRESET_25M)
    batch, seq = _shapes(quick)["default"]
    torch.manual_seed(0)
    measured = measure_saved_activation_bytes(CognateForCausalLM(default),
                                              torch.randint(0, default.vocab_size, (batch, seq)))
    estimated = estimate_training_memory(default, batch, seq).activations
    return {"default_params": _params(default), "25m_params": _params(big),
            "shapes_batch_seq": _shapes(quick), "gpu_budget_gib": GPU_BYTES / 2**30,
            "cuda_context_mib_assumed_per_model": 400,
            "default_activation_mib_measured": round(measured / 2**20, 1),
            "default_activation_mib_estimated": round(estimated / 2**20, 1),
            **_gpu_plan(big, big.max_seq_len)}
