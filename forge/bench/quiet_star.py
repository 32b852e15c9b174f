"""`python -m forge.bench quiet_star`: Quiet-STaR (arXiv 2403.09629) training cost and the
(a)/(b)/(c) anti-theater table on the default config (`config/pipeline.yaml`).

Setup (once): the run's data and tokenizer, and a starting model trained like a Phase 1
specialist (the default config's first specialisation, its default steps). Per repetition:
- training tokens/s of the plain causal-LM step (MuGrokfast, `optim.quiet_star`) and of the
  Quiet-STaR step (thought sampling + scoring pass + REINFORCE/LM/KL losses) on the same task
  batches; tokens are base tokens of the batch, so the ratio is the overhead factor of thinking;
- the whole phase with its default settings (`run_quiet_star`, no Ray): wall time, and on the
  validation split answer bits per byte and exact match of (a) thinking, (b) thoughts off,
  (c) random thoughts, the input model's bits, and whether the gate adopted the model.
`--quick` shrinks the model (1 layer, 64 wide), the pre-training and the phase to seconds.
"""
from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import torch

from forge.config import DEFAULT_CONFIG, PipelineConfig, load
from forge.optim import build_optimizer
from forge.phases.cognate import SpecialistJob, build_seed_model, train_specialist
from forge.phases.common import RunData, prepare_data
from forge.phases.quiet_star import (OUTPUT, QuietStarBatches, build_thinking_model,
                                     loss_settings, run_quiet_star)
from forge.phases.quiet_star_config import PHASE
from forge.models import CognateForCausalLM
from forge.pipeline import ModelRef, PhaseContext, save_artifact
from forge.pipeline.artifacts import read_manifest
from forge.reasoning import quiet_star_loss

REPEATS = 1
TIMED_STEPS = 6
UNITS = {"plain_tokens_per_s": "tokens/s", "thinking_tokens_per_s": "tokens/s",
         "overhead_factor": "x", "phase_seconds": "s", "train_seconds": "s",
         "a_think_bits_per_byte": "bits/byte", "b_off_bits_per_byte": "bits/byte",
         "c_random_bits_per_byte": "bits/byte", "input_bits_per_byte": "bits/byte",
         "a_think_exact_match": "fraction", "b_off_exact_match": "fraction",
         "c_random_exact_match": "fraction", "a_mix_w": "w", "adopted": "0/1",
         "gain_vs_off": "bits/byte", "gain_vs_off_se": "bits/byte", "gain_vs_random": "bits/byte",
         "gain_vs_random_se": "bits/byte"}
QUICK = ["model.d_model=64", "model.d_ff=192", "model.n_layers=1", "phases.cognate.train.steps=10",
         "phases.quiet_star.train.steps=4", "phases.quiet_star.eval.max_examples=4",
         "phases.quiet_star.eval.accuracy_examples=1"]
_STATE: dict = {}


class Rows:
    """Metric sink for a phase run outside the driver."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, dict]] = []

    def log_metrics(self, run_id, phase, step, values, model=""):
        self.rows.append((step, model, dict(values)))

    def progress(self, phase, done, total, note=""):
        pass


def _config(quick: bool) -> PipelineConfig:
    return load(DEFAULT_CONFIG, (QUICK if quick else []) + ["wandb.mode=disabled"])


def _starting_model(cfg: PipelineConfig, data: RunData, run_dir: Path) -> ModelRef:
    """A Phase-1-trained specialist (the first specialisation of the config), as an artifact."""
    seed = build_seed_model(cfg, len(data.tokenizer), cfg.run.seed)
    manifest = save_artifact(seed, run_dir / "seed", metadata={"vocab_size": len(data.tokenizer)})
    spec = cfg.phase("cognate").specialisations[0]
    job = SpecialistJob("bench", run_dir, cfg, spec, run_dir / "seed", "bench/cognate/seed",
                        manifest["digest"], run_dir / "start", run_dir / "ckpt")
    train_specialist(job, lambda step, m: None)  # saves the artifact in run_dir/start
    man = read_manifest(run_dir / "start")
    return ModelRef(f"bench/cognate/{spec.name}", str(run_dir / "start"), man["digest"],
                    man["params"], man["metadata"])


def _prepared(quick: bool) -> dict:
    if quick not in _STATE:
        tmp = Path(tempfile.mkdtemp(prefix="quiet-star-bench-"))
        cfg = _config(quick)
        data = prepare_data(cfg, tmp)
        _STATE[quick] = {"cfg": cfg, "data": data, "dir": tmp,
                         "input": _starting_model(cfg, data, tmp)}
    return _STATE[quick]


def _steps_per_s(step, n: int) -> float:
    step(0)  # warm-up (allocations, first-call overheads)
    start = time.perf_counter()
    for i in range(1, n + 1):
        step(i)
    return n / (time.perf_counter() - start)


def training_speed(state: dict, quick: bool) -> dict[str, float]:
    """Base tokens/s of a plain LM step and of a Quiet-STaR step on the same batches."""
    cfg, data = state["cfg"], state["data"]
    s = cfg.phase(PHASE)
    base = CognateForCausalLM.from_pretrained(state["input"].path)
    reference = copy.deepcopy(base).eval().requires_grad_(False)
    thinker = build_thinking_model(base, data.tokenizer, s)
    batches = QuietStarBatches(data, cfg, s, cfg.run.seed)
    plain = copy.deepcopy(base).train()
    opt_plain = build_optimizer(plain, cfg.optim.for_phase(PHASE))
    opt_think = build_optimizer(thinker.train(), cfg.optim.for_phase(PHASE))
    settings = loss_settings(s, s.train.kl_weight)
    gen = torch.Generator().manual_seed(0)
    tokens = [batches(i)["input_ids"].numel() for i in range(TIMED_STEPS + 1)]

    def plain_step(i: int) -> None:
        b = batches(i)
        loss = plain(input_ids=b["input_ids"], labels=b["labels"]).loss
        opt_plain.zero_grad(set_to_none=True)
        loss.backward()
        opt_plain.step()

    def think_step(i: int) -> None:
        b = batches(i)
        loss, _ = quiet_star_loss(thinker, b["input_ids"], b["labels"], settings, reference, gen)
        opt_think.zero_grad(set_to_none=True)
        loss.backward()
        opt_think.step()

    n = 2 if quick else TIMED_STEPS
    mean_tokens = sum(tokens[1:n + 1]) / n
    plain_tps = _steps_per_s(plain_step, n) * mean_tokens
    think_tps = _steps_per_s(think_step, n) * mean_tokens
    return {"plain_tokens_per_s": plain_tps, "thinking_tokens_per_s": think_tps,
            "overhead_factor": plain_tps / think_tps}


def phase_table(state: dict) -> dict[str, float]:
    """The whole phase with its config settings; the (a)/(b)/(c) numbers and the gate."""
    out = state["dir"] / f"phase-{len(list(state['dir'].glob('phase-*')))}"
    ctx = PhaseContext("bench", PHASE, 1, state["dir"], out, state["cfg"], Rows())
    start = time.perf_counter()
    result = run_quiet_star([state["input"]], ctx)
    seconds = time.perf_counter() - start
    modes, summary = result.summary["modes"], result.summary
    assert (out / OUTPUT / "model.safetensors").is_file()  # the artifact was really written
    return {"phase_seconds": seconds, "train_seconds": summary["train"]["seconds"],
            "a_think_bits_per_byte": modes["think"]["bits_per_byte"],
            "b_off_bits_per_byte": modes["off"]["bits_per_byte"],
            "c_random_bits_per_byte": modes["random"]["bits_per_byte"],
            "input_bits_per_byte": summary["input"]["bits_per_byte"],
            "a_think_exact_match": modes["think"]["exact_match"],
            "b_off_exact_match": modes["off"]["exact_match"],
            "c_random_exact_match": modes["random"]["exact_match"],
            "a_mix_w": modes["think"]["mix_w"], "adopted": float(result.adopted),
            "gain_vs_off": modes["think"]["gain_vs_off"],
            "gain_vs_off_se": modes["think"]["gain_vs_off_se"],
            "gain_vs_random": modes["think"]["gain_vs_random"],
            "gain_vs_random_se": modes["think"]["gain_vs_random_se"]}


def measure(quick: bool) -> dict[str, float]:
    state = _prepared(quick)
    torch.manual_seed(0)
    return {**training_speed(state, quick), **phase_table(state)}


def setup(quick: bool) -> dict:
    cfg = _config(quick)
    s = cfg.phase(PHASE)
    m = cfg.model
    return {"config": "config/pipeline.yaml" + (" (--quick overrides)" if quick else ""),
            "model": f"d_model {m.d_model}, {m.n_layers} layers, seq_len {cfg.data.seq_len}, "
                     f"vocab {cfg.data.vocab_size}, TRM T={m.trm.T} n={m.trm.n} "
                     f"S={m.trm.supervision_steps}",
            "starting_model": f"Phase 1 specialist '{cfg.phase('cognate').specialisations[0].name}'"
                              f", {cfg.phase('cognate').train.steps} steps",
            "thoughts": f"length {s.thoughts.length}, {s.thoughts.per_position} per position, "
                        f"n_ahead {s.thoughts.n_ahead}, temperature {s.thoughts.temperature}",
            "phase_train": f"{s.train.steps} steps, batch {s.train.batch_size}",
            "eval": f"validation, {s.eval.max_examples} examples per task for bits, "
                    f"{s.eval.accuracy_examples} per task for exact match",
            "gate": f"(a) < (b) - {s.gate.margin} and (a) < (c) - {s.gate.margin}",
            "timed_steps": 2 if quick else TIMED_STEPS}
