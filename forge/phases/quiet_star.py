"""Phase 3 (Quiet-STaR), its pure steps: add a thought head to the input model, train it to think
(REINFORCE + LM losses, MuGrokfast `optim.quiet_star`), evaluate (a) with thoughts, (b) thoughts
off, (c) random thoughts on the validation split, and gate (DESIGN.md section 5).

Gate metric: validation answer bits per byte (lower is better; DESIGN.md section 6 explains why
not exact match at this scale). Adopted only if (a) < (b) - margin and (a) < (c) - margin.
The Ray side is `actors/phases/quiet_star.py`.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Callable

import torch
from transformers import PreTrainedTokenizerFast

from forge.config import PipelineConfig
from forge.data.batching import (EncodedExample, collate, encode_documents, encode_example,
                                 lm_windows)
from forge.eval.evaluate import per_task_sample
from forge.models import CognateForCausalLM
from forge.optim import build_optimizer
from forge.phases.common import RunData, pick_device, prepare_data
from forge.phases.quiet_star_config import PHASE, QuietStarPhaseConfig
from forge.reasoning import LossSettings, add_thought_head, quiet_star_loss, thought_config
from forge.reasoning.scoring import (MODES, answer_bits, answer_nats_checked, bits_summary,
                                     exact_match, paired_gain)
from forge.pipeline import (BasePhase, HandoffContract, PhaseContext, PhaseOutput, PhaseResult,
                            register_phase, save_artifact)
from forge.pipeline.phase import output_ref
from forge.pipeline.artifacts import ModelRef
from forge.training.checkpoint import CheckpointPlan, load_state
from forge.training.loop import scale_lr
from forge.training.schedule import warmup_cosine

Log = Callable[[int, dict], None]
OUTPUT = "thinker"  # artifact name of the phase's model
OUTPUT_METADATA = ("vocab_size", "thought_len", "input_model")


def thought_token_ids(tokenizer: PreTrainedTokenizerFast, init_token: str) -> dict[str, object]:
    """Ids of the reserved start/end-of-thought tokens, of all special tokens (never inside a
    thought) and of the single token whose embedding starts the thought embeddings."""
    from forge.data.tokenizer import END_THOUGHT, START_THOUGHT

    start, end = (tokenizer.convert_tokens_to_ids(t) for t in (START_THOUGHT, END_THOUGHT))
    if start is None or end is None or start == tokenizer.unk_token_id:
        raise ValueError("tokenizer: no <|startofthought|>/<|endofthought|> tokens reserved")
    init = tokenizer.encode(init_token, add_special_tokens=False)
    if len(init) != 1:
        raise ValueError(f"phases.quiet_star.thoughts.embed_init_token: {init_token!r} is "
                         f"{len(init)} tokens in this vocabulary; allowed: exactly one")
    return {"start": start, "end": end, "banned": list(tokenizer.all_special_ids),
            "init": init[0]}


def build_thinking_model(base: CognateForCausalLM, tokenizer: PreTrainedTokenizerFast,
                         s: QuietStarPhaseConfig) -> CognateForCausalLM:
    """`base` plus a fresh thought head (an input that already has one keeps its own)."""
    if base.config.vocab_size != len(tokenizer):
        raise ValueError(f"quiet_star input: model vocabulary {base.config.vocab_size} != "
                         f"tokenizer's {len(tokenizer)}; the model belongs to another run")
    ids = thought_token_ids(tokenizer, s.thoughts.embed_init_token)
    t = s.thoughts
    cfg = thought_config(base.config, t.length, t.mixer_hidden, t.mix_init, ids["start"],
                         ids["end"], ids["banned"])
    if base.thoughts is not None and base.config.thought_len == t.length:
        return base
    return add_thought_head(base, cfg, ids["init"], t.embed_init_scale)


def prompt_length(example: EncodedExample) -> int:
    """Tokens before the answer (labels are -100 there)."""
    return next(i for i, t in enumerate(example.labels) if t != -100)


class QuietStarBatches:
    """Batch `step` is a pure function of (seed, step): answer-masked task examples (the answer
    tokens are where thinking is scored) and, with `text_fraction`, packed text windows.

    A task batch holds examples of one task whose prompts have the same length, so their answers
    start at one position: thoughts are drawn only where a batch scores a token, and aligned
    answers keep that set (the union over rows) as small as the longest answer.
    """

    def __init__(self, data: RunData, cfg: PipelineConfig, s: QuietStarPhaseConfig, seed: int):
        weights = dict(s.train.task_weights) or {t.name: t.weight for t in cfg.data.tasks}
        unknown = set(weights) - {t.name for t in cfg.data.tasks}
        if unknown:
            raise ValueError(f"phases.quiet_star.train.task_weights: unknown task(s) "
                             f"{sorted(unknown)}; data.tasks has "
                             f"{', '.join(t.name for t in cfg.data.tasks)}")
        seq = cfg.data.seq_len
        self.by_task = {n: [encode_example(data.tokenizer, e, seq) for e in data.tasks.train
                            if e.task == n] for n, w in weights.items() if w > 0}
        self.by_task = {n: v for n, v in self.by_task.items() if v}
        if not self.by_task and s.train.text_fraction < 1:
            raise ValueError("phases.quiet_star.train: no training examples for the chosen tasks")
        self.same_start = {n: self._by_prompt_length(v) for n, v in self.by_task.items()}
        self.tasks = sorted(self.by_task)
        self.weights = torch.tensor([weights[t] for t in self.tasks] or [1.0])
        self.text_fraction, self.seed = s.train.text_fraction, seed
        self.batch_size, self.pad = s.train.batch_size, data.tokenizer.pad_token_id
        self.windows = (lm_windows(encode_documents(data.tokenizer, data.corpus.train), seq)
                        if s.train.text_fraction > 0 else None)

    @staticmethod
    def _by_prompt_length(examples: list[EncodedExample]) -> dict[int, list[EncodedExample]]:
        groups: dict[int, list[EncodedExample]] = {}
        for e in examples:
            groups.setdefault(prompt_length(e), []).append(e)
        return groups

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        if not self.tasks or torch.rand((), generator=g).item() < self.text_fraction:
            rows = torch.randint(len(self.windows), (self.batch_size,), generator=g)
            ids = self.windows[rows][:, :-1]  # (B, T)
            return {"input_ids": ids, "labels": ids}
        task = self.tasks[int(torch.multinomial(self.weights, 1, generator=g))]
        pool = self.by_task[task]
        first = pool[int(torch.randint(len(pool), (), generator=g))]
        same = self.same_start[task][prompt_length(first)]  # drawn with replacement
        picks = torch.randint(len(same), (self.batch_size - 1,), generator=g).tolist()
        return collate([first] + [same[i] for i in picks], self.pad)


def loss_settings(s: QuietStarPhaseConfig, kl_weight: float) -> LossSettings:
    t = s.thoughts
    return LossSettings(t.length, t.per_position, t.n_ahead, t.temperature,
                        s.train.reinforce_weight, kl_weight)


@dataclass
class TrainOutcome:
    steps: int
    final_loss: float
    tokens_per_s: float  # base tokens of the batches per second of training (this attempt)
    seconds: float
    resumed_from: int = 0  # the step a checkpoint let this attempt start at


def resume_thinking(model: CognateForCausalLM, optimizer, generator: torch.Generator,
                    plan: CheckpointPlan | None) -> tuple[int, dict]:
    """Load the newest checkpoint of `plan` (weights, optimizer, thought sampler and torch RNG):
    the rest of the run is then exactly the uninterrupted one. Returns (step, last loss parts)."""
    path = plan.latest() if plan else None
    if path is None:
        return 0, {}
    model.load_state_dict(type(model).from_pretrained(path).state_dict())
    state = load_state(path)
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["rng"])
    return int(state["step"]), dict(state["parts"])


def train_thinking(model: CognateForCausalLM, reference: CognateForCausalLM | None,
                   batches: Callable[[int], dict], s: QuietStarPhaseConfig, cfg: PipelineConfig,
                   seed: int, log: Log = lambda step, m: None,
                   progress: Callable[[int, int], None] = lambda d, t: None,
                   checkpoints: CheckpointPlan | None = None) -> TrainOutcome:
    """`s.train.steps` MuGrokfast steps on `quiet_star_loss` (Grokfast before clipping, QK-clip
    after the step, as Phase 1's Trainer does), resuming from and writing `checkpoints`."""
    optim_cfg = cfg.optim.for_phase(PHASE)
    optimizer = build_optimizer(model, optim_cfg)
    before_step, after_step = optimizer.hooks()
    settings, generator = loss_settings(s, s.train.kl_weight), torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    start, parts = resume_thinking(model, optimizer, generator, checkpoints)
    model.train()
    tokens, started = 0, time.perf_counter()
    for step in range(start, s.train.steps):
        t = s.train
        scale_lr(optimizer, warmup_cosine(step, t.steps, t.warmup, t.min_lr_ratio))
        batch = batches(step)
        ids, labels = batch["input_ids"].to(device), batch["labels"].to(device)
        loss, parts = quiet_star_loss(model, ids, labels, settings, reference, generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"quiet_star: loss is {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        before_step()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.train.grad_clip)
        optimizer.step()
        after_step()
        tokens += ids.numel()
        if (step + 1) % s.train.log_every == 0 or step + 1 == s.train.steps:
            log(step + 1, parts)
        progress(step + 1, s.train.steps)
        if checkpoints and checkpoints.due(step + 1, s.train.steps):
            checkpoints.save(step + 1, model, {
                "step": step + 1, "optimizer": optimizer.state_dict(), "parts": dict(parts),
                "generator": generator.get_state(), "rng": torch.get_rng_state()})
    model.eval()
    seconds = max(1e-9, time.perf_counter() - started)
    return TrainOutcome(s.train.steps, parts.get("loss/total", float("nan")), tokens / seconds,
                        seconds, start)


def evaluate_modes(model: CognateForCausalLM, data: RunData, s: QuietStarPhaseConfig,
                   seed: int, split: str = "validation") -> dict[str, dict[str, float]]:
    """(a) think, (b) off, (c) random: answer bits per byte, mean mixing weight, exact match."""
    examples = per_task_sample(data.tasks.split(split), s.eval.max_examples)
    sample = per_task_sample(examples, s.eval.accuracy_examples) if s.eval.accuracy_examples else []
    out, nats = {}, {}
    for mode in MODES:
        nats[mode], w = answer_nats_checked(model, data.tokenizer, examples, mode,
                                            s.thoughts.temperature, seed, s.eval.batch_size)
        m = bits_summary(nats[mode], w, examples)
        m["exact_match"] = exact_match(model, data.tokenizer, sample, mode, s.eval.max_new_tokens,
                                       s.thoughts.temperature, seed)
        m["examples"], m["accuracy_examples"] = float(len(examples)), float(len(sample))
        out[mode] = m
    for control in ("off", "random"):  # paired over the same examples: how sure the gain is
        gain, se = paired_gain(nats[control], nats["think"], examples)
        out["think"][f"gain_vs_{control}"], out["think"][f"gain_vs_{control}_se"] = gain, se
    return out


def gate_decision(modes: dict[str, dict[str, float]], margin: float) -> tuple[bool, str]:
    """Adopt iff think beats off and random by `margin` bits per answer byte (lower is better)."""
    a, b, c = (modes[m]["bits_per_byte"] for m in MODES)
    adopted = a < b - margin and a < c - margin
    verdict = "adopted" if adopted else "not adopted"
    reason = (f"{verdict}: validation answer bits/byte (a) thinking {a:.4f}, (b) thoughts off "
              f"{b:.4f}, (c) random thoughts {c:.4f}; needs (a) < (b) - {margin} and "
              f"(a) < (c) - {margin}")
    return adopted, reason


def mode_metrics(modes: dict[str, dict[str, float]]) -> dict[str, float]:
    """Flat metric rows: eval/<mode>/<name>."""
    return {f"eval/{mode}/{k}": v for mode, m in modes.items() for k, v in m.items()}


def checkpoint_plan(ctx: PhaseContext, source: ModelRef, seed: int) -> CheckpointPlan:
    """Checkpoints in the run storage (`<run>/checkpoints/quiet_star/thinker`), reused only for
    the same input model and the same settings."""
    cfg, s = ctx.config, ctx.settings
    settings = json.dumps([source.digest, seed, repr(s), repr(cfg.model), repr(cfg.data),
                           repr(cfg.optim.for_phase(PHASE))])
    root, push = ctx.storage.working_copy(f"{ctx.run_id}/checkpoints/{PHASE}/{OUTPUT}")
    return CheckpointPlan(root, hashlib.sha256(settings.encode()).hexdigest(),
                          s.train.checkpoint_every, s.train.keep_checkpoints, push)


def run_quiet_star(inputs: list[ModelRef], ctx: PhaseContext) -> PhaseResult:
    """The whole phase on one input model: train, evaluate (a)/(b)/(c), gate, save, report."""
    cfg, s = ctx.config, ctx.settings
    seed = cfg.run.seed if s.seed is None else s.seed
    device = pick_device(cfg.run.device)
    data = prepare_data(cfg, ctx.run_dir, ctx.storage)
    source = inputs[0]
    torch.manual_seed(seed)
    base = CognateForCausalLM.from_pretrained(source.path).to(device).eval()
    input_metrics = answer_bits(base, data.tokenizer, per_task_sample(
        data.tasks.validation, s.eval.max_examples), "off", seed=seed,
        batch_size=s.eval.batch_size)
    model = build_thinking_model(base, data.tokenizer, s).to(device)
    for p in base.parameters():
        p.requires_grad_(False)  # the frozen reference of the KL term
    reference = base if s.train.kl_weight > 0 else None
    batches = QuietStarBatches(data, cfg, s, seed)
    outcome = train_thinking(model, reference, batches, s, cfg, seed,
                             lambda step, m: ctx.log_metrics(step, m, model=OUTPUT),
                             lambda d, t: ctx.progress(d, t, "training steps"),
                             checkpoint_plan(ctx, source, seed))
    modes = evaluate_modes(model, data, s, seed)
    adopted, reason = gate_decision(modes, s.gate.margin)
    metrics = {**mode_metrics(modes), "eval/input/bits_per_byte": input_metrics["bits_per_byte"],
               "train/final_loss": outcome.final_loss, "train/tokens_per_s": outcome.tokens_per_s,
               "train/seconds": outcome.seconds, "train/resumed_from": float(outcome.resumed_from),
               "gate/adopted": float(adopted)}
    ctx.log_metrics(outcome.steps, metrics, model=OUTPUT)
    save_artifact(model.cpu(), ctx.artifact_dir(OUTPUT), [source.id], metrics,
                  {"vocab_size": model.config.vocab_size, "thought_len": model.config.thought_len,
                   "input_model": source.id, **dict(source.metadata)})
    key = ("val_answer_bits_per_byte", modes["think"]["bits_per_byte"])
    return PhaseResult([PhaseOutput(OUTPUT, [(source.id, "quiet_star")])], adopted=adopted,
                       reason=reason, key_metric=key,
                       summary={"modes": modes, "input": input_metrics,
                                "gate_margin": s.gate.margin,
                                "train": {"steps": outcome.steps, "final_loss": outcome.final_loss,
                                          "tokens_per_s": outcome.tokens_per_s,
                                          "seconds": outcome.seconds}})


@register_phase
class QuietStarPhase(BasePhase):
    """One model in (EvoMerge's champion or any registered model) -> the thinking model out,
    adopted only if thinking beats thoughts-off and random thoughts on validation. The whole
    phase runs in one process (on Ray: inside its PhaseActor)."""

    name = PHASE
    config_class = QuietStarPhaseConfig
    input_contract = HandoffContract(1, 1)

    def run(self, inputs, ctx: PhaseContext) -> PhaseResult:
        return run_quiet_star(inputs, ctx)

    def validate_output(self, result: PhaseResult, ctx: PhaseContext) -> None:
        if not result.adopted:
            return  # the input goes on unchanged; it already passed the input contract
        s = ctx.settings
        contract = HandoffContract(1, 1, s.min_params, s.max_params, OUTPUT_METADATA)
        contract.check([output_ref(ctx, o) for o in result.outputs if o.name == OUTPUT],
                       "quiet_star output")
