"""Phase 2 (EvoMerge), its pure steps: the parents and their common base, building and scoring
one candidate, and the generation-to-generation bookkeeping (DESIGN.md section 5).

`EvoMergePhase` is the whole phase; its executor scores the generations: `LocalGenerations`
(one candidate after another in this process) or, on Ray, `actors/phases/evomerge.py` (each
candidate a Ray Tune trial; `Evolution.advance` at the barrier of a PBT-style scheduler). Candidate
weights live in the run storage (`<run>/checkpoints/evomerge/candidates/<id>/`), so a trial is
sent ids and storage paths, never tensors, and pulls what it needs onto its own node.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import posixpath
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from forge.config import PipelineConfig
from forge.eval import evaluate
from forge.config import dump
from forge.evolve import Candidate, build_candidate, fitness, plot_history
from forge.evolve.run import Evolution
from forge.merge import StateDict
from forge.models import CognateConfig, CognateForCausalLM
from forge.phases.common import RunData, pick_device, prepare_data
from forge.phases.evomerge_config import PHASE, EvoMergePhaseConfig, SampleSizes
from forge.pipeline import (BasePhase, HandoffContract, PhaseContext, PhaseOutput, PhaseResult,
                            register_phase)
from forge.pipeline.artifacts import ArtifactError, read_manifest, save_artifact, verify_artifact
from forge.pipeline.phase import output_ref
from forge.storage import RunStorage

OUTPUT_METADATA = ("vocab_size", "candidate", "fitness", "generation")
PLOT = "fitness.png"  # beside the champion: runs/<run>/evomerge/fitness.png
SEED_METADATA = "seed_dir"  # Phase 1 names its seed model (the common base) relative to a model


@dataclass(frozen=True)
class ParentSet:
    """Where the parents and their common ancestor are (storage paths and digests: cheap to ship)."""

    paths: tuple[str, ...]
    digests: tuple[str, ...]
    base_path: str | None  # None: no common ancestor found; the parents' mean stands in
    base_digest: str | None = None

    def fingerprint(self, settings: EvoMergePhaseConfig, seed: int) -> str:
        """An evolution state is resumed only for the same parents, base and settings."""
        text = json.dumps([self.digests, self.base_path, repr(settings.evolve), seed])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def find_base(parent_paths: list[str], storage: RunStorage) -> tuple[str | None, str | None]:
    """(storage path, digest) of the parents' shared seed model when every parent (pulled onto
    this node, paths under `storage.local()`) names the same one and it verifies; else
    (None, None)."""
    found = set()
    for path in parent_paths:
        rel = read_manifest(path).get("metadata", {}).get(SEED_METADATA)
        found.add(posixpath.normpath(f"{storage.rel(path)}/{rel}") if rel else None)
    if len(found) != 1 or None in found:
        return None, None
    (base,) = found
    try:
        return base, verify_artifact(storage.pull(base))["digest"]
    except ArtifactError:
        return None, None


@functools.lru_cache(maxsize=16)
def _load(path: str, digest: str) -> tuple[StateDict, CognateConfig]:
    """A model's weights and config, cached per process (a reused Tune actor loads each once)."""
    model = CognateForCausalLM.from_pretrained(path)
    return {k: v.detach() for k, v in model.state_dict().items()}, model.config


def _load_stored(storage: RunStorage, rel: str, digest: str) -> tuple[StateDict, CognateConfig]:
    """A parent (or the base) from this node's mirror; pulled only when the mirror does not
    already hold exactly that digest (every candidate of a trial needs the same parents)."""
    local = storage.local(rel)
    try:
        current = read_manifest(local)["digest"]
    except (ArtifactError, KeyError):
        current = None
    if current != digest:
        storage.pull(rel)
    return _load(str(local), digest)


def load_parents(parents: ParentSet,
                 storage: RunStorage) -> tuple[list[StateDict], StateDict, CognateConfig]:
    """The parents' state dicts, the base (TIES/DARE task vectors start there) and the config."""
    loaded = [_load_stored(storage, p, d) for p, d in zip(parents.paths, parents.digests)]
    sds, config = [sd for sd, _ in loaded], loaded[0][1]
    if parents.base_path is not None:
        base = _load_stored(storage, parents.base_path, parents.base_digest)[0]
    else:  # documented fallback: task vectors relative to the parents' mean
        base = {k: torch.stack([sd[k].float() for sd in sds]).mean(0).to(sds[0][k].dtype)
                for k in sds[0]}
    return sds, base, config


@functools.lru_cache(maxsize=2)
def _config(config_yaml: str) -> PipelineConfig:
    """The run's config, parsed once per process (every candidate of a trial actor shares it)."""
    from forge.config import from_yaml_text

    return from_yaml_text(config_yaml)


@functools.lru_cache(maxsize=2)
def _run_data(ctx: TrialContext) -> RunData:
    """The run's data and tokenizer (pulled from the storage), once per trial process."""
    return prepare_data(_config(ctx.config_yaml), ctx.storage.local(ctx.run_dir), ctx.storage)


def sample_eval(cfg: PipelineConfig, sizes: SampleSizes):
    """The run's evaluation settings with smaller samples and no untrained reference."""
    return dataclasses.replace(cfg.data.eval, max_documents=sizes.max_documents,
                               max_task_examples=sizes.max_task_examples,
                               max_new_tokens=sizes.max_new_tokens, reference=False)


def score_model(model: CognateForCausalLM, data: RunData, cfg: PipelineConfig, sizes: SampleSizes,
                split: str) -> dict[str, float]:
    """Evaluation metrics of `model` on a sample of `split` (validation selects; test reports)."""
    model.eval()
    with torch.no_grad():
        return evaluate(model, data.tokenizer, data.corpus.split(split), data.tasks.split(split),
                        sample_eval(cfg, sizes))


@dataclass(frozen=True)
class TrialContext:
    """What every trial shares, sent once (Tune's `with_parameters`)."""

    config_yaml: str
    run_dir: str  # storage paths, like everything below
    parents: ParentSet
    candidates_dir: str
    storage: RunStorage


def candidate_dir(ctx: TrialContext, candidate_id: str) -> Path:
    """Where a scored candidate is on this node, pulled from the run storage."""
    return ctx.storage.pull(f"{ctx.candidates_dir}/{candidate_id}")


def _fitness_of(path: Path) -> float | None:
    """The fitness an earlier attempt stored with a candidate (None: not there or broken)."""
    try:
        manifest = verify_artifact(path)
    except (ArtifactError, KeyError, ValueError):
        return None
    value = manifest.get("metrics", {}).get("fitness")
    return None if value is None else float(value)


def score_candidate(ctx: TrialContext, candidate: Candidate,
                    source_fitness: dict[str, float]) -> dict[str, Any]:
    """Build one candidate (recipe, elite + noise, or loser merge), score it on the validation
    sample and save it under `candidates/<id>`. A candidate already saved by an earlier attempt
    is not rebuilt. Returns its metrics with `fitness` (higher is better; -inf if it broke)."""
    cfg = _config(ctx.config_yaml)
    settings: EvoMergePhaseConfig = cfg.phase(PHASE)
    out = candidate_dir(ctx, candidate.id)
    started = time.time()
    cached = _fitness_of(out)
    if cached is not None:
        return {"fitness": cached, "cached": 1.0, "eval_started": started, "eval_ended": time.time()}
    parents, base, config = load_parents(ctx.parents, ctx.storage)
    built = {s: _load(str(path), read_manifest(path)["digest"])
             for s, path in ((s, candidate_dir(ctx, s)) for s in candidate.sources)}
    sd, merged_cfg = build_candidate(candidate, parents, base, config, built, source_fitness)
    model = CognateForCausalLM(merged_cfg)
    model.load_state_dict(sd)
    metrics = score_model(model, _run_data(ctx), cfg,
                          settings.fitness_eval, "validation")
    value = fitness(metrics, settings.evolve.fitness)
    metrics["fitness"] = value if math.isfinite(value) else -math.inf
    partial = out.with_name(f".{candidate.id}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    save_artifact(model, partial, metrics=metrics,
                  metadata={"candidate": candidate.to_dict(), "vocab_size": merged_cfg.vocab_size})
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    ctx.storage.push(ctx.storage.rel(out))
    return {**metrics, "cached": 0.0, "eval_started": started, "eval_ended": time.time()}


def generation_timing(results: list[dict], workers: int) -> dict[str, float]:
    """Share of worker time idle inside the evolution: 1 - busy / (workers x wall span), and the
    candidates scored per minute (from the trials' own start/end stamps)."""
    timed = [r for r in results if r.get("eval_started") and r.get("eval_ended")]
    if not timed:
        return {}
    span = max(r["eval_ended"] for r in timed) - min(r["eval_started"] for r in timed)
    busy = sum(r["eval_ended"] - r["eval_started"] for r in timed)
    return {"idle_share": max(0.0, 1 - busy / (workers * span)) if span > 0 else 0.0,
            "candidates_per_min": 60 * len(timed) / span if span > 0 else 0.0,
            "span_s": span, "busy_s": busy, "workers": float(workers)}


OnGeneration = Callable[[int], None]  # called with each generation number once it is scored


class GenerationExecutor(Protocol):
    """Scores generations of `evolution` until it ends; returns one record per scored candidate
    (candidate_id, generation, fitness, eval_started, eval_ended, node_id)."""

    workers: int  # candidates it scores at once (what the idle share is measured against)

    def run(self, evolution: Evolution, context: TrialContext, ctx: PhaseContext,
            on_generation: OnGeneration) -> list[dict]: ...


class LocalGenerations:
    """Every candidate in this process, one after another (tests; a machine without Ray)."""

    workers = 1

    def run(self, evolution: Evolution, context: TrialContext, ctx: PhaseContext,
            on_generation: OnGeneration) -> list[dict]:
        records, fit = [], {c.id: f for c, f in evolution.state.population}
        population = evolution.population() if not evolution.finished() else []
        while population:
            scored = []
            for c in population:
                m = score_candidate(context, c, {k: v for k, v in fit.items() if k in c.sources})
                records.append({"candidate_id": c.id, "generation": c.generation, "node_id": None,
                                **{k: m.get(k) for k in ("fitness", "eval_started", "eval_ended",
                                                         "cached")}})
                scored.append((c, m["fitness"]))
            scored.sort(key=lambda cf: cf[0].id)
            population = evolution.advance(scored) or []
            on_generation(scored[0][0].generation)
            fit = {c.id: f for c, f in scored}
        return records


@register_phase
class EvoMergePhase(BasePhase):
    """Three Phase 1 models -> an evolved population of merges -> one champion with lineage."""

    name = PHASE
    config_class = EvoMergePhaseConfig
    input_contract = HandoffContract(3, 3, required_metadata=("vocab_size",))

    def __init__(self, executor: GenerationExecutor | None = None):
        self.executor = executor or LocalGenerations()

    def run(self, inputs, ctx: PhaseContext) -> PhaseResult:
        cfg, settings = ctx.config, ctx.settings
        seed = cfg.run.seed if settings.seed is None else settings.seed
        paths = [str(Path(i.path).resolve()) for i in inputs]
        parents = ParentSet(tuple(ctx.rel(p) for p in paths), tuple(i.digest for i in inputs),
                            *find_base(paths, ctx.storage))
        work = Path(ctx.run_dir) / "checkpoints" / PHASE
        n_layers = CognateForCausalLM.config_class.from_pretrained(paths[0]).n_layers
        evolution = Evolution(settings, seed, n_layers, work / "state.json", work / "candidates",
                              parents.fingerprint(settings, seed), ctx.storage)
        data = prepare_data(cfg, ctx.run_dir, ctx.storage)
        loaded = {ref.id: CognateForCausalLM.from_pretrained(ref.path) for ref in inputs}
        parent_scores = self._score_parents(loaded, data, ctx)
        context = TrialContext(dump(cfg), ctx.run_id, parents, ctx.rel(work / "candidates"),
                               ctx.storage)
        results: list[dict] = []
        if not evolution.finished():
            results = self.executor.run(evolution, context, ctx,
                                        lambda gen: self._on_generation(gen, evolution, ctx))
        return self._finish(inputs, loaded, parent_scores, evolution, context, results, data, ctx)

    @staticmethod
    def _on_generation(gen: int, evolution: Evolution, ctx: PhaseContext) -> None:
        row = evolution.state.rows[-1]
        ctx.log_metrics(gen, {"evolve/best": row["best"], "evolve/mean": row["mean"],
                              "evolve/diversity": row["diversity"],
                              "evolve/best_ever": evolution.state.best_fitness})
        ctx.progress(gen + 1, ctx.settings.evolve.generations + 1, "generations")

    def _score_parents(self, loaded: dict, data, ctx: PhaseContext) -> dict[str, dict]:
        """Each parent's validation fitness on the same sample as the candidates'."""
        settings = ctx.settings
        scores = {}
        for model_id, model in loaded.items():
            metrics = score_model(model, data, ctx.config, settings.fitness_eval, "validation")
            metrics["fitness"] = fitness(metrics, settings.evolve.fitness)
            ctx.log_metrics(0, {"parent/fitness": metrics["fitness"]}, model=model_id)
            scores[model_id] = metrics
        return scores

    def _champion(self, inputs, loaded, parent_scores, evolution: Evolution,
                  context: TrialContext):
        """The best candidate ever scored, unless a parent scored higher (elitism over the
        parents too: the champion is never worse than the best parent on validation)."""
        best_parent = max(inputs, key=lambda r: parent_scores[r.id]["fitness"])
        best_fit = evolution.state.best_fitness
        if best_fit is not None and best_fit >= parent_scores[best_parent.id]["fitness"]:
            path = candidate_dir(context, evolution.state.best_id)
            return CognateForCausalLM.from_pretrained(path), evolution.state.best, best_fit, None
        return (loaded[best_parent.id], None, parent_scores[best_parent.id]["fitness"],
                best_parent)

    def _finish(self, inputs, loaded, parent_scores, evolution, context, results, data,
                ctx: PhaseContext) -> PhaseResult:
        settings = ctx.settings
        model, candidate, champ_fit, kept_parent = self._champion(inputs, loaded, parent_scores,
                                                                  evolution, context)
        test = {"champion": score_model(model, data, ctx.config, settings.report_eval, "test")}
        for model_id, parent in loaded.items():
            test[model_id] = score_model(parent, data, ctx.config, settings.report_eval, "test")
        method = (f"evomerge:{'+'.join(candidate.recipe.genes)}:{candidate.origin}"
                  if candidate else "evomerge:parent_kept")
        history = evolution.state.to_dict()
        references = {ref.id.rsplit("/", 1)[-1]: parent_scores[ref.id]["fitness"] for ref in inputs}
        plot = plot_history(evolution.state.rows, ctx.out_dir / PLOT, references,
                            settings.evolve.diversity_floor).name if evolution.state.rows else None
        best_parent_fit = max(s["fitness"] for s in parent_scores.values())
        metadata = {"vocab_size": model.config.vocab_size, "fitness": champ_fit,
                    "generation": candidate.generation if candidate else -1,
                    "candidate": candidate.to_dict() if candidate else None,
                    "ancestry": evolution.ancestry(candidate.id) if candidate else [],
                    "kept_parent": kept_parent.id if kept_parent else None,
                    "parent_fitness": {k: v["fitness"] for k, v in parent_scores.items()}}
        save_artifact(model, ctx.artifact_dir("champion"), [i.id for i in inputs],
                      {**{f"test/{k}": v for k, v in test["champion"].items()},
                       "validation/fitness": champ_fit}, metadata)
        gain = (champ_fit - best_parent_fit) / abs(best_parent_fit) if best_parent_fit else math.nan
        key = "tasks/answer_bits_per_byte"
        summary = {"parents_validation": parent_scores, "test": test, "champion_fitness": champ_fit,
                   "best_parent_fitness": best_parent_fit, "relative_gain": gain,
                   "method": method, "generations_scored": evolution.state.generation + 1,
                   "resumed_from_generation": evolution.resumed_from,
                   "history": history["rows"], "plot": f"{PHASE}/{plot}" if plot else None,
                   "timing": generation_timing(results, self.executor.workers),
                   "trial_nodes": sorted({r["node_id"] for r in results if r.get("node_id")}),
                   "device": pick_device(ctx.config.run.device).type}
        ctx.log_metrics(evolution.state.generation + 1, {
            "champion/fitness": champ_fit, "champion/relative_gain": gain,
            "champion/test_answer_bits_per_byte": test["champion"][key]})
        parents = [(kept_parent.id, method)] if kept_parent else [(i.id, method) for i in inputs]
        return PhaseResult([PhaseOutput("champion", parents)],
                           key_metric=("val_fitness", champ_fit), summary=summary)

    def validate_output(self, result: PhaseResult, ctx: PhaseContext) -> None:
        s = ctx.settings
        contract = HandoffContract(1, 1, s.min_params, s.max_params, OUTPUT_METADATA)
        contract.check([output_ref(ctx, o) for o in result.outputs if o.handed_on],
                       "evomerge output")
        read_manifest(ctx.artifact_dir("champion"))
