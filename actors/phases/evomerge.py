"""Phase 2 on Ray: the population scored as Ray Tune trials, evolved at each generation barrier."""
from __future__ import annotations

import math
from pathlib import Path

import ray
from ray import tune
from ray.tune import PlacementGroupFactory

from actors.evolution import EvolutionScheduler, PopulationSearch, evaluate_candidate
from actors.resources import gpu_share
from forge.config import dump
from forge.evolve import fitness, plot_history
from forge.models import CognateForCausalLM
from forge.phases.common import pick_device, prepare_data
from forge.phases.evomerge import (Evolution, ParentSet, TrialContext, candidate_dir, find_base,
                                   score_model)
from forge.phases.evomerge_config import PHASE, EvoMergePhaseConfig
from forge.pipeline import (BasePhase, HandoffContract, PhaseContext, PhaseOutput, PhaseResult,
                            register_phase, save_artifact)
from forge.pipeline.artifacts import read_manifest
from forge.pipeline.phase import output_ref

OUTPUT_METADATA = ("vocab_size", "candidate", "fitness", "generation")
PLOT = "fitness.png"  # beside the champion: runs/<run>/evomerge/fitness.png


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


def concurrent_trials(cpus: float) -> int:
    """Trials that fit at once on the cluster's CPUs (what the idle share is measured against)."""
    total = ray.cluster_resources().get("CPU", 1.0)
    return max(1, int(total // cpus))


def run_tune(evolution: Evolution, context: TrialContext, ctx: PhaseContext,
             settings: EvoMergePhaseConfig) -> list[dict]:
    """Score generations as Tune trials until the evolution ends; returns every trial result."""
    def on_generation(gen: int, results: dict) -> None:
        row = evolution.state.rows[-1]
        ctx.log_metrics(gen, {"evolve/best": row["best"], "evolve/mean": row["mean"],
                              "evolve/diversity": row["diversity"],
                              "evolve/best_ever": evolution.state.best_fitness})
        ctx.progress(gen + 1, settings.evolve.generations + 1, "generations")

    scheduler = EvolutionScheduler(evolution, on_generation)
    first = evolution.population()
    previous = {c.id: f for c, f in evolution.state.population}
    trainable = tune.with_resources(
        tune.with_parameters(evaluate_candidate, context=context,
                             threads=max(1, int(settings.trial_cpus))),
        trial_resources(settings, ctx.config.ray.placement))
    tuner = tune.Tuner(
        trainable,
        param_space={"candidate": tune.grid_search([c.to_dict() for c in first]),
                     "source_fitness": previous},
        tune_config=tune.TuneConfig(scheduler=scheduler, search_alg=PopulationSearch(scheduler),
                                    reuse_actors=True, num_samples=1,
                                    trial_dirname_creator=lambda t: f"slot-{t.trial_id}"),
        run_config=tune.RunConfig(
            **tune_storage(ctx), name=f"attempt-{ctx.attempt}", verbose=0,
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    grid = tuner.fit()
    errors = [str(r.error).splitlines()[0] for r in grid if r.error]
    if errors and evolution.state.generation < 0:
        raise RuntimeError(f"evomerge: every trial failed; first error: {errors[0]}")
    return scheduler.results


def trial_resources(settings: EvoMergePhaseConfig, placement: str) -> PlacementGroupFactory:
    """One bundle per trial (its CPUs, GPU fraction when the cluster has GPUs), placed by
    `ray.placement`: SPREAD puts each new trial on the least loaded node, PACK fills one first."""
    bundle = {"CPU": settings.trial_cpus}
    if gpu_share(settings.trial_gpus):
        bundle["GPU"] = gpu_share(settings.trial_gpus)
    return PlacementGroupFactory([bundle], strategy="SPREAD" if placement == "spread" else "PACK")


def tune_storage(ctx: PhaseContext) -> dict:
    """Tune keeps its experiment state in the run storage too (any node can reach it)."""
    path, filesystem = ctx.storage.tune_storage(f"{ctx.run_id}/checkpoints/{PHASE}/tune")
    return {"storage_path": path, "storage_filesystem": filesystem}


@register_phase
class EvoMergePhase(BasePhase):
    """Three Phase 1 models -> an evolved population of merges -> one champion with lineage."""

    name = PHASE
    config_class = EvoMergePhaseConfig
    input_contract = HandoffContract(3, 3, required_metadata=("vocab_size",))

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
            results = run_tune(evolution, context, ctx, settings)
        return self._finish(inputs, loaded, parent_scores, evolution, context, results, data, ctx)

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
                   "timing": generation_timing(results, concurrent_trials(settings.trial_cpus)),
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
