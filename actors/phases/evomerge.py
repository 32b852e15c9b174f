"""Phase 2's executor on Ray Tune: the population scored as trials, evolved at each generation
barrier (`actors/evolution.py`). The phase itself is `forge.phases.evomerge.EvoMergePhase`."""
from __future__ import annotations

import ray
from ray import tune
from ray.tune import PlacementGroupFactory

from actors.evolution import EvolutionScheduler, PopulationSearch, evaluate_candidate
from actors.resources import gpu_share
from forge.evolve.run import Evolution
from forge.phases.evomerge import OnGeneration, TrialContext
from forge.phases.evomerge_config import PHASE, EvoMergePhaseConfig
from forge.pipeline import PhaseContext


class TuneGenerations:
    """`GenerationExecutor` on Ray Tune: as many trials at once as the cluster's CPUs allow."""

    workers = 1  # set by `run` from the cluster it runs on

    def run(self, evolution: Evolution, context: TrialContext, ctx: PhaseContext,
            on_generation: OnGeneration) -> list[dict]:
        self.workers = concurrent_trials(ctx.settings.trial_cpus)
        return run_tune(evolution, context, ctx, on_generation)


def concurrent_trials(cpus: float) -> int:
    """Trials that fit at once on the cluster's CPUs (what the idle share is measured against)."""
    total = ray.cluster_resources().get("CPU", 1.0)
    return max(1, int(total // cpus))


def run_tune(evolution: Evolution, context: TrialContext, ctx: PhaseContext,
             on_generation: OnGeneration) -> list[dict]:
    """Score generations as Tune trials until the evolution ends; returns every trial result."""
    settings = ctx.settings
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
