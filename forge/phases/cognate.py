"""Phase 1 (Cognate), its pure steps: the shared seed model, each specialist's data and
training, and the checks on the three results (DESIGN.md section 5).

`CognatePhase` is the whole phase; where the three specialists train is its executor's
business: `LocalTrainers` (one after another in this process) or, on Ray,
`actors/phases/cognate.py`'s trainers (three TrainerActors at once, sharing a GPU by fractions).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch

from forge.config import PipelineConfig
from forge.data.batching import collate, encode_example, encode_documents, lm_windows
from forge.eval.context import attention_entropy, prompt_swap_gain
from forge.eval.diversity import pairwise_diversity
from forge.eval.evaluate import per_task_sample
from forge.models import CognateForCausalLM, cognate_config_from
from forge.optim import build_optimizer
from forge.phases.cognate_config import PHASE, CognatePhaseConfig, Specialisation
from forge.phases.common import RunData, evaluate_split, pick_device, prepare_data
from forge.pipeline import (BasePhase, HandoffContract, PhaseContext, PhaseOutput, PhaseResult,
                            model_id, register_phase)
from forge.pipeline.artifacts import save_artifact
from forge.pipeline.phase import output_ref
from forge.storage import RunStorage
from forge.training.loop import LoopSettings, Trainer

OUTPUT_METADATA = ("specialisation", "vocab_size", "seed_model")


def build_seed_model(cfg: PipelineConfig, vocab_size: int, seed: int) -> CognateForCausalLM:
    """The one initialisation all specialists start from (weights of models trained from
    different inits are not aligned, so they could not be merged later)."""
    torch.manual_seed(seed)
    return CognateForCausalLM(cognate_config_from(cfg.model, vocab_size))


def specialise(model: CognateForCausalLM, spec: Specialisation) -> None:
    """Apply a specialisation's settings, none of which changes a parameter shape."""
    model.config.act_threshold = spec.act_threshold
    if spec.memory_chunk is not None:
        model.config.memory_chunk = spec.memory_chunk
    if spec.window is not None:
        model.config.window = spec.window


class SpecialistBatches:
    """Batch `step` is a pure function of (data seed, step): exact resume needs no data state."""

    def __init__(self, data: RunData, spec: Specialisation, batch_size: int, seq_len: int,
                 task_weights: dict[str, float]):
        ids = encode_documents(data.tokenizer, data.corpus.train)
        self.windows = lm_windows(ids, seq_len)  # (N, T+1)
        self.by_task = {name: [encode_example(data.tokenizer, e, seq_len) for e in
                               data.tasks.train if e.task == name]
                        for name, w in task_weights.items() if w > 0}
        self.by_task = {k: v for k, v in self.by_task.items() if v}
        self.tasks = sorted(self.by_task)
        self.weights = torch.tensor([task_weights[t] for t in self.tasks], dtype=torch.float)
        self.spec, self.batch_size = spec, batch_size
        self.pad_id = data.tokenizer.pad_token_id

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.spec.data_seed * 1_000_003 + step)
        text = not self.tasks or torch.rand((), generator=g).item() < self.spec.text_fraction
        if text:
            rows = torch.randint(len(self.windows), (self.batch_size,), generator=g)
            ids = self.windows[rows]  # (B, T+1)
            return {"input_ids": ids, "labels": ids}
        picks = torch.multinomial(self.weights, self.batch_size, replacement=True, generator=g)
        chosen = []
        for t in picks.tolist():
            pool = self.by_task[self.tasks[t]]
            chosen.append(pool[int(torch.randint(len(pool), (), generator=g))])
        return collate(chosen, self.pad_id)


def task_weights_for(spec: Specialisation, cfg: PipelineConfig) -> dict[str, float]:
    """The specialist's task mix; names it gives must be tasks of `data.tasks`."""
    known = {t.name: t.weight for t in cfg.data.tasks}
    for name in spec.task_weights:
        if name not in known:
            raise ValueError(f"phases.cognate.specialisations[{spec.name}].task_weights: unknown "
                             f"task {name!r}; data.tasks has {', '.join(sorted(known))}")
    return dict(spec.task_weights) if spec.task_weights else known


@dataclass(frozen=True)
class SpecialistJob:
    """Everything a TrainerActor needs to train one specialist; plain data, cheap to ship."""

    run_id: str
    run_dir: Path
    config: PipelineConfig
    spec: Specialisation
    seed_path: Path
    seed_id: str
    seed_digest: str
    out_dir: Path
    checkpoint_dir: Path
    storage: RunStorage | None = None  # set: the paths above are storage paths (any node trains)

    def local(self, path: str | Path) -> Path:
        """`path` on this node (in its mirror of the run storage, when there is one)."""
        return self.storage.local(str(path)) if self.storage else Path(path)

    def pulled(self, path: str | Path) -> Path:
        """`path` on this node, pulled from the run storage first when there is one."""
        return self.storage.pull(str(path)) if self.storage else Path(path)

    def push(self, path: str | Path) -> None:
        if self.storage:
            self.storage.push(str(path))

    @property
    def fingerprint(self) -> str:
        """Checkpoints are reused only for the same seed weights and the same settings."""
        settings = json.dumps([self.seed_digest, repr(self.spec), repr(self.config.phases.get(PHASE)),
                               repr(self.config.model), repr(self.config.data)], sort_keys=True)
        return hashlib.sha256(settings.encode()).hexdigest()


def loop_settings(s) -> LoopSettings:
    return LoopSettings(steps=s.steps, warmup=s.warmup, min_lr_ratio=s.min_lr_ratio,
                        grad_clip=s.grad_clip, log_every=s.log_every,
                        checkpoint_every=s.checkpoint_every, keep_checkpoints=s.keep_checkpoints,
                        divergence_factor=s.divergence_factor,
                        divergence_grace=s.divergence_grace, max_recoveries=s.max_recoveries,
                        lr_backoff=s.lr_backoff)


def train_specialist(job: SpecialistJob, log: Callable[[int, dict], None],
                     progress: Callable[[int, int], None] = lambda d, t: None) -> dict:
    """Train one specialist from the seed (resuming from its checkpoint), evaluate it on the
    validation split and save its artifact. Returns its metrics."""
    started = time.time()  # the trainer's work starts here: data, model, then the loop
    cfg, spec = job.config, job.spec
    settings = cfg.phase(PHASE)
    device = pick_device(cfg.run.device)
    data = prepare_data(cfg, job.local(job.run_dir), job.storage)
    model = CognateForCausalLM.from_pretrained(job.pulled(job.seed_path)).to(device)
    specialise(model, spec)
    if settings.train.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    torch.manual_seed(spec.data_seed)
    optimizer = build_optimizer(model, cfg.optim.for_phase(PHASE))
    batches = SpecialistBatches(data, spec, settings.train.batch_size, cfg.data.seq_len,
                                task_weights_for(spec, cfg))
    before_step, after_step = optimizer.hooks()
    trainer = Trainer(spec.name, model, optimizer, batches, loop_settings(settings.train),
                      job.pulled(job.checkpoint_dir), job.fingerprint, device, log, progress,
                      before_step=before_step, after_step=after_step,
                      on_checkpoint=lambda: job.push(job.checkpoint_dir))
    outcome = trainer.run()
    if outcome.resumed_from == 0:
        log(0, {"trainer/started_at": started})
    metrics = evaluate_split(model, data, cfg)
    metrics.update(context_metrics(model, data, settings.context_examples))
    metrics.update({"train/final_loss": outcome.final_loss, "train/tokens_per_s": outcome.tokens_per_s,
                    "train/resumed_from": float(outcome.resumed_from),
                    "train/recoveries": float(outcome.recoveries)})
    save_artifact(model.cpu(), job.local(job.out_dir), [job.seed_id], metrics,
                  {"specialisation": spec.name, "vocab_size": model.config.vocab_size,
                   "seed_model": job.seed_id, "act_threshold": spec.act_threshold,
                   "seed_dir": "../seed"})  # the common base of later merges, beside this model
    job.push(job.out_dir)
    log(outcome.steps_done, {"trainer/ended_at": time.time(), **metrics})
    return metrics


def check_diversity(models: dict[str, dict], seed: dict, floor: float) -> dict[str, float]:
    """Pairwise diversity of the specialists; raises ValueError naming the closest pair under
    `floor` (identical training would give three copies of one model)."""
    pairs = pairwise_diversity(models, seed)
    named = {f"diversity/{a}~{b}": d for (a, b), d in pairs.items()}
    if pairs:
        (a, b), low = min(pairs.items(), key=lambda kv: kv[1])
        if low < floor:
            raise ValueError(f"cognate: models {a} and {b} are too alike: pairwise weight "
                             f"diversity {low:.4g} < phases.cognate.diversity_floor {floor}")
    return named


def context_metrics(model: CognateForCausalLM, data: RunData, per_task: int) -> dict[str, float]:
    """Does the model read its prompt? Prompt-swap gain (mean, standard error, n) on up to
    `per_task` validation questions of each task, and attention entropy per block."""
    sample = per_task_sample(data.tasks.validation, per_task)
    if len(sample) < 2:
        return {}
    gain = prompt_swap_gain(model, data.tokenizer, sample)
    ids = collate([encode_example(data.tokenizer, e, model.config.max_seq_len)
                   for e in sample[:16]], data.tokenizer.pad_token_id)["input_ids"]
    out = {"context/prompt_swap_gain": gain.mean, "context/prompt_swap_stderr": gain.stderr,
           "context/prompt_swap_n": float(gain.n)}
    for i, h in enumerate(attention_entropy(model, ids)):
        out[f"context/attention_entropy/block{i}"] = h
    return out


def check_context(models: dict[str, dict], floor: float | None) -> None:
    """Raise ValueError naming every specialist whose prompt-swap gain is under `floor` (None:
    no check): its answers do not depend on the question, and every later phase would measure
    noise."""
    if floor is None:
        return
    unmeasured = sorted(n for n, m in models.items() if "context/prompt_swap_gain" not in m)
    if unmeasured:
        raise ValueError(f"cognate: no prompt-swap gain for {', '.join(unmeasured)}: the "
                         "validation split needs two questions of one task")
    blind = {name: m["context/prompt_swap_gain"] for name, m in models.items()
             if m["context/prompt_swap_gain"] < floor}
    if blind:
        detail = ", ".join(f"{n} {g:+.4f} +- {models[n]['context/prompt_swap_stderr']:.4f}"
                           for n, g in sorted(blind.items()))
        raise ValueError(f"cognate: specialist(s) do not read their prompt: prompt-swap gain "
                         f"{detail} bits per answer byte < phases.cognate.min_prompt_swap_gain "
                         f"{floor} (train longer or see docs/model.md)")


def specialist_weights(path: Path) -> dict[str, torch.Tensor]:
    """A trained specialist's state dict (for the diversity check)."""
    return CognateForCausalLM.from_pretrained(path).state_dict()


@dataclass
class Trained:
    """What an executor hands back: each specialist's metrics, where it trained, with what."""

    metrics: dict[str, dict]
    nodes: dict[str, str]
    resources: dict[str, float]


class SpecialistExecutor(Protocol):
    """Runs `train_specialist` for every job (concurrently or not) and reports the results."""

    def train(self, jobs: list[SpecialistJob], ctx: PhaseContext) -> Trained: ...


class LocalTrainers:
    """Every specialist in this process, one after another (tests; a machine without Ray)."""

    def train(self, jobs: list[SpecialistJob], ctx: PhaseContext) -> Trained:
        steps, metrics = ctx.settings.train.steps, {}
        for i, job in enumerate(jobs):
            name = job.spec.name
            metrics[name] = train_specialist(
                job, lambda step, values, n=name: ctx.log_metrics(step, values, model=n),
                lambda done, total, i=i: ctx.progress(i * steps + done, len(jobs) * steps,
                                                      "steps over all trainers"))
        return Trained(metrics, {name: "local" for name in metrics},
                       {"num_cpus": float(torch.get_num_threads()), "num_gpus": 0.0})


@register_phase
class CognatePhase(BasePhase):
    """Seed model -> three specialists trained (by the executor) -> diversity and context checks."""

    name = PHASE
    config_class = CognatePhaseConfig
    input_contract = HandoffContract(0, 0)

    def __init__(self, executor: SpecialistExecutor | None = None):
        self.executor = executor or LocalTrainers()

    def run(self, inputs, ctx: PhaseContext) -> PhaseResult:
        cfg, settings = ctx.config, ctx.settings
        data = prepare_data(cfg, ctx.run_dir, ctx.storage)
        seed_value = cfg.run.seed if settings.init_seed is None else settings.init_seed
        seed_model = build_seed_model(cfg, len(data.tokenizer), seed_value)
        seed_manifest = save_artifact(seed_model, ctx.artifact_dir("seed"),
                                      metadata={"vocab_size": len(data.tokenizer), "role": "seed"})
        ctx.storage.push(ctx.rel(ctx.artifact_dir("seed")))  # trainers on other nodes pull it
        seed_id = model_id(ctx.run_id, PHASE, "seed")
        jobs = [SpecialistJob(ctx.run_id, ctx.run_id, cfg, spec, ctx.rel(ctx.artifact_dir("seed")),
                              seed_id, seed_manifest["digest"], ctx.rel(ctx.artifact_dir(spec.name)),
                              f"{ctx.run_id}/checkpoints/{PHASE}/{spec.name}", ctx.storage)
                for spec in settings.specialisations]
        trained = self.executor.train(jobs, ctx)
        results = trained.metrics
        seed_metrics = evaluate_split(seed_model, data, cfg)
        ctx.log_metrics(0, seed_metrics, model="seed")
        states = {name: specialist_weights(ctx.storage.pull(ctx.rel(ctx.artifact_dir(name))))
                  for name in results}
        diversity = check_diversity(states, seed_model.state_dict(), settings.diversity_floor)
        ctx.log_metrics(settings.train.steps, diversity)
        check_context(results, settings.min_prompt_swap_gain)
        key = "text/bits_per_byte"
        beats = {n: r[key] < seed_metrics[key] for n, r in results.items()}
        outputs = [PhaseOutput("seed", [], handed_on=False)]
        outputs += [PhaseOutput(j.spec.name, [(seed_id, f"train:{j.spec.name}")]) for j in jobs]
        best = min(r[key] for r in results.values())
        return PhaseResult(outputs, key_metric=("val_bits_per_byte", best),
                           summary={"seed": seed_metrics, "models": results, "diversity": diversity,
                                    "beats_seed": beats, "trainer_nodes": trained.nodes,
                                    "trainer_resources": {
                                        **trained.resources,
                                        "device": pick_device(cfg.run.device).type}})

    def validate_output(self, result: PhaseResult, ctx: PhaseContext) -> None:
        s = ctx.settings
        contract = HandoffContract(len(s.specialisations), len(s.specialisations), s.min_params,
                                   s.max_params, OUTPUT_METADATA)
        contract.check([output_ref(ctx, o) for o in result.outputs if o.handed_on], "cognate output")
