"""Phase 4 (BitNet b1.58, arXiv 2402.17764), its pure steps: evaluate the fp input, calibrate,
convert to ternary, evaluate, STE fine-tune with the MuGrokfast `bitnet` preset, export the
packed artifact, check that it reloads to the same logits, evaluate it, and apply the gate.

    fp model --calibrate--> per-layer stats --convert--> ternary (PTQ) --STE N steps--> ternary
             --save_ternary--> packed artifact --load_ternary--> same logits, same numbers

`run_bitnet(ref, ctx)` does it all inside whatever process runs the phase (the PhaseActor on Ray).
"""
from __future__ import annotations

import copy
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from forge.config import PipelineConfig
from forge.data.batching import encode_documents, lm_windows
from forge.data.tokenizer import TOKENIZER_FILE, load_tokenizer
from forge.optim import build_optimizer, max_logits
from forge.phases.bitnet_config import PHASE, BitnetPhaseConfig
from forge.phases.cognate import SpecialistBatches, loop_settings, task_weights_for
from forge.phases.cognate_config import Specialisation
from forge.phases.common import RunData, evaluate_split, pick_device, prepare_data
from forge.pipeline.artifacts import ModelRef
from forge.pipeline.inputs import STAGED_FILE
from forge.pipeline import BasePhase, HandoffContract, register_phase
from forge.pipeline.phase import PhaseContext, PhaseOutput, PhaseResult
from forge.quant import (calibrate, convert_to_ternary, is_ternary, load_model, load_ternary,
                         round_to_dtype, save_ternary, size_report, ternary_layers)
from forge.quant.calibrate import summarise
from forge.training.loop import LoopOutcome, Trainer

OUTPUT_NAME = "ternary"
OUTPUT_METADATA = ("vocab_size", "quantization", "loader")
KEY = "text/bits_per_byte"
SIZE_KEYS = ("artifact_bytes", "linear_bits_per_weight", "max_layer_bits_per_weight",
             "model_bits_per_weight", "ratio_fp32", "ratio_fp16")
REPORTED = (KEY, "text/perplexity", "tasks/answer_bits_per_byte", "tasks/exact_match",
            "tasks/exact_match_low", "tasks/exact_match_high", "tasks/n")


def torch_dtype(name: str) -> torch.dtype:
    """'float16' -> torch.float16 (the names `BitnetPhaseConfig.dtype` allows)."""
    return getattr(torch, name)


def load_input(ref: ModelRef, vocab: int) -> nn.Module:
    """The fp input model; ValueError naming the model when it is already ternary or its
    vocabulary is smaller than the run's tokenizer."""
    if is_ternary(ref.path):
        raise ValueError(f"bitnet input {ref.id}: already a packed ternary artifact; "
                         "Phase 4 takes a full-precision model")
    model = load_model(ref.path)
    if model.config.vocab_size < vocab:
        raise ValueError(f"bitnet input {ref.id}: vocabulary {model.config.vocab_size} < the "
                         f"run tokenizer's {vocab}; the model was trained with another tokenizer")
    return model


def input_tokenizer(ref: ModelRef) -> Path | None:
    """The tokenizer the input model was trained with, when it can be found: a tokenizer.json in
    the artifact, or, for a model staged from another run (`pipeline.inputs`), that run's."""
    path = Path(ref.path)
    if (path / TOKENIZER_FILE).is_file():
        return path / TOKENIZER_FILE
    record = path.parent / STAGED_FILE  # runs/<run>/inputs/inputs.json
    if not record.is_file():
        return None
    for item in json.loads(record.read_text()):
        if item.get("name") == path.name:
            source_run = Path(item["path"]).parents[1]  # runs/<source run>/<phase>/<name>
            found = source_run / TOKENIZER_FILE
            return found if found.is_file() else None
    return None


def sync_tokenizer(ref: ModelRef, run_dir: Path) -> str:
    """Make the run use the input model's tokenizer: copy it into a run that has none yet (a
    run starting from another run's model); ValueError naming both files when the run already
    has a different one. Returns where the run's tokenizer came from."""
    source, own = input_tokenizer(ref), Path(run_dir) / TOKENIZER_FILE
    if source is None:
        return "run" if own.is_file() else "trained"
    if not own.is_file():
        own.parent.mkdir(parents=True, exist_ok=True)
        tmp = own.with_suffix(".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(own)
        return str(source)
    if load_tokenizer(own).get_vocab() != load_tokenizer(source).get_vocab():
        raise ValueError(f"bitnet input {ref.id}: trained with the tokenizer {source}, which "
                         f"differs from this run's {own}; start a new run from the model")
    return "run"


def calibration_batches(data: RunData, cfg: PipelineConfig, documents: int) -> list[torch.Tensor]:
    """Validation documents as (B, T) token windows of the evaluation's length."""
    docs = data.corpus.validation[:documents] if documents else data.corpus.validation
    ids = encode_documents(data.tokenizer, docs)
    seq = min(cfg.data.eval.seq_len, max(8, len(ids) - 1))
    windows = lm_windows(ids, seq)[:, :-1]  # (N, T)
    return list(windows.split(cfg.data.eval.batch_size))


def fingerprint(ref: ModelRef, cfg: PipelineConfig) -> str:
    """Checkpoints are resumed only for the same input weights and the same settings."""
    text = json.dumps([ref.digest, repr(cfg.phase(PHASE)), repr(cfg.optim.for_phase(PHASE)),
                       repr(cfg.model), repr(cfg.data)])
    return hashlib.sha256(text.encode()).hexdigest()


def fine_tune(model: nn.Module, data: RunData, cfg: PipelineConfig, ckpt_dir: Path,
              ckpt_fingerprint: str, log: Callable[[int, dict], None],
              progress: Callable[[int, int], None],
              on_checkpoint: Callable[[], None] = lambda: None) -> tuple[LoopOutcome, dict[str, float]]:
    """STE fine-tuning (arXiv 2402.17764: gradients of W_q pass to the latent W) with MuGrokfast
    (`optim.bitnet`) in the Phase 1 loop: batches are a pure function of the step and
    checkpoints under `ckpt_dir` resume exactly. Returns the outcome and QK-clip counts."""
    s: BitnetPhaseConfig = cfg.phase(PHASE)
    spec = Specialisation(name=PHASE, data_seed=s.data_seed, text_fraction=s.text_fraction)
    batches = SpecialistBatches(data, spec, s.train.batch_size, cfg.data.seq_len,
                                task_weights_for(spec, cfg))
    device = pick_device(cfg.run.device)
    model.to(device)  # before the optimizer, so its state lives on the same device
    torch.manual_seed(s.data_seed)
    optimizer = build_optimizer(model, cfg.optim.for_phase(PHASE))
    before_step, _ = optimizer.hooks()
    clips = {"qk_clip/heads_clipped": 0.0, "qk_clip/steps_with_clip": 0.0,
             "qk_clip/max_logit": 0.0}

    def after_step() -> None:
        peak = max_logits(model)  # read before qk_clip resets it
        clipped = sum(optimizer.qk_clip().values())
        clips["qk_clip/heads_clipped"] += clipped
        clips["qk_clip/steps_with_clip"] += float(clipped > 0)
        if peak is not None:
            clips["qk_clip/max_logit"] = max(clips["qk_clip/max_logit"], float(peak))

    if s.train.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    trainer = Trainer(OUTPUT_NAME, model, optimizer, batches, loop_settings(s.train), ckpt_dir,
                      ckpt_fingerprint, device, log, progress,
                      before_step=before_step, after_step=after_step, on_checkpoint=on_checkpoint)
    return trainer.run(), clips


def gate(fp_bpb: float, ternary_bpb: float, margin: float) -> tuple[bool, str]:
    """Adopted iff ternary bits/byte <= fp bits/byte * (1 + margin) (a NaN never passes)."""
    limit = fp_bpb * (1 + margin)
    adopted = bool(ternary_bpb <= limit)
    sign = "<=" if adopted else ">"
    return adopted, (f"validation bits/byte: ternary after STE {ternary_bpb:.4f} {sign} "
                     f"{limit:.4f} = fp {fp_bpb:.4f} x (1 + margin {margin:g})")


def pick(metrics: dict[str, float]) -> dict[str, float]:
    """The reported subset of an evaluation."""
    return {k: metrics[k] for k in REPORTED if k in metrics}


def check_reload(model: nn.Module, out_dir: Path, ids: torch.Tensor) -> bool:
    """Reload the packed artifact and compare its logits with the in-memory model's; a
    RuntimeError when they differ (the artifact would not be the model we measured)."""
    loaded = load_ternary(out_dir)
    model.eval()
    with torch.no_grad():
        same = torch.equal(loaded(ids).logits, model(ids).logits)
    if not same:
        raise RuntimeError(f"bitnet: the reloaded artifact {out_dir} gives other logits than "
                           "the model that was saved")
    return same


def export(model: nn.Module, ref: ModelRef, ctx: PhaseContext, metrics: dict[str, float],
           probe: torch.Tensor) -> tuple[dict[str, float], bool]:
    """Save the packed artifact (save_ternary, arXiv 2402.17764 weights at 1.6 bits), check that
    it reloads to the same logits on `probe` (B, T), and measure it. Returns (size_report,
    logits equal)."""
    s: BitnetPhaseConfig = ctx.settings
    out_dir = ctx.artifact_dir(OUTPUT_NAME)
    metadata = {**ref.metadata, "vocab_size": model.config.vocab_size, "parent": ref.id,
                "ternary_layers": len(ternary_layers(model)), "non_ternary_dtype": s.dtype}
    save_ternary(model, out_dir, torch_dtype(s.dtype), [ref.id], metrics, metadata)
    equal = check_reload(model, out_dir, probe)
    return size_report(out_dir), equal


def run_bitnet(ref: ModelRef, ctx: PhaseContext) -> PhaseResult:
    """The whole phase for one input model (module docstring); returns its PhaseResult."""
    cfg, s = ctx.config, ctx.settings
    started = time.time()
    tokenizer = ctx.storage.pull(ctx.rel(ctx.run_dir / TOKENIZER_FILE))
    tokenizer_from = sync_tokenizer(ref, ctx.run_dir)  # before prepare_data reads or trains one
    if tokenizer.is_file():
        ctx.storage.push(ctx.rel(tokenizer))
    data = prepare_data(cfg, ctx.run_dir, ctx.storage)
    fp = load_input(ref, len(data.tokenizer))
    total = s.train.steps
    ctx.progress(0, total, "evaluating the fp model")
    fp_metrics = evaluate_split(fp, data, cfg)
    ctx.log_metrics(0, pick(fp_metrics), model="fp")

    calib_batches = calibration_batches(data, cfg, s.calibration_documents)
    stats = calibrate(fp, calib_batches, s.keep, s.act_bits, s.per_channel, s.qk_head_scales)
    ctx.log_metrics(0, summarise(stats), model="fp")

    model = copy.deepcopy(fp)
    names = convert_to_ternary(model, s.keep, s.per_channel, s.act_bits, s.qk_head_scales)
    ptq_metrics = evaluate_split(model, data, cfg)
    ctx.log_metrics(0, pick(ptq_metrics), model="ternary_ptq")

    ckpt_dir, push_checkpoints = ctx.storage.working_copy(
        ctx.rel(ctx.run_dir / "checkpoints" / PHASE / OUTPUT_NAME))
    outcome, clips = fine_tune(model, data, cfg, ckpt_dir, fingerprint(ref, cfg),
                               lambda step, v: ctx.log_metrics(step, v, model=OUTPUT_NAME),
                               ctx.progress, push_checkpoints)
    model.cpu().eval()
    round_to_dtype(model, torch_dtype(s.dtype))  # what the artifact holds: the numbers below are the artifact's
    ste_metrics = evaluate_split(model, data, cfg)
    adopted, reason = gate(fp_metrics[KEY], ste_metrics[KEY], s.gate.margin)
    if not adopted:  # the driver applies gate.on_fail; the reason says how far STE got
        reason += f"; right after quantisation {ptq_metrics[KEY]:.4f}"
    train = {"final_loss": outcome.final_loss, "tokens_per_s": outcome.tokens_per_s,
             "resumed_from": float(outcome.resumed_from), **clips}
    ctx.log_metrics(outcome.steps_done, {**pick(ste_metrics), **{f"train/{k}": v for k, v in
                                                                 train.items()}},
                    model=OUTPUT_NAME)

    size, reload_equal = export(model, ref, ctx, pick(ste_metrics), calib_batches[0])
    ctx.log_metrics(outcome.steps_done, {f"size/{k}": float(size[k]) for k in SIZE_KEYS},
                    model=OUTPUT_NAME)
    summary = {"fp": pick(fp_metrics), "ternary_ptq": pick(ptq_metrics),
               "ternary_ste": pick(ste_metrics), "size": size, "train": train,
               "gate": {"adopted": adopted, "margin": s.gate.margin, "on_fail": s.gate.on_fail,
                        "fp_bits_per_byte": fp_metrics[KEY],
                        "ternary_bits_per_byte": ste_metrics[KEY],
                        "ratio": ste_metrics[KEY] / fp_metrics[KEY], "reason": reason},
               "calibration": {n: st.as_dict() for n, st in stats.items()},
               "calibration_summary": summarise(stats), "ternary_layers": names,
               "reload_logits_equal": reload_equal, "input": ref.id,
               "tokenizer_from": tokenizer_from,
               "steps": outcome.steps_done, "wall_s": time.time() - started}
    return PhaseResult([PhaseOutput(OUTPUT_NAME, [(ref.id, "bitnet:ste")])], adopted=adopted,
                       reason=reason, key_metric=("val_bits_per_byte", ste_metrics[KEY]),
                       summary=summary)


@register_phase
class BitnetPhase(BasePhase):
    """fp model -> calibrate -> ternary -> STE fine-tune -> packed artifact -> gate. The whole
    phase runs in one process (on Ray: inside its PhaseActor, with the phase's `resources`)."""

    name = PHASE
    config_class = BitnetPhaseConfig
    input_contract = HandoffContract(1, 1)
    output_contract = HandoffContract(1, 1, required_metadata=OUTPUT_METADATA)

    def run(self, inputs, ctx: PhaseContext) -> PhaseResult:
        return run_bitnet(inputs[0], ctx)
