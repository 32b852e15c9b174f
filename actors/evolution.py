"""Phase 2 on Ray Tune: one trial scores one candidate; a PBT subclass evolves the population.

`EvolutionScheduler` is Tune's `PopulationBasedTraining` in synchronous mode (every trial reports
generation g before any starts g+1) whose exploit step is replaced: instead of copying a top
trial's hyper-parameters into a bottom one, it hands the whole scored generation to
`forge.evolve.run.Evolution.advance` (elites mutate, losers merge, diversity re-seeds) and
gives every trial its next candidate as its new config (`PopulationSearch` keeps the trial
actors cached across the barrier). It overrides two private PBT methods
(`_checkpoint_or_exploit`, `choose_trial_to_run`): Ray is pinned to 2.60.x in pyproject and
tests/actors/test_evomerge_phase.py fails loudly if their behaviour changes (RAY_NOTES.md).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any

import ray
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.search import BasicVariantGenerator

from forge.evolve import Candidate
from forge.evolve.run import Evolution
from forge.phases.evomerge import TrialContext, score_candidate

STOP = {"stop": True}


def trial_config(candidate: Candidate, source_fitness: dict[str, float]) -> dict[str, Any]:
    """A trial's config: its candidate and the fitness of the candidates it is built from."""
    return {"candidate": candidate.to_dict(),
            "source_fitness": {k: v for k, v in source_fitness.items() if k in candidate.sources}}


def evaluate_candidate(config: dict, context: TrialContext, threads: int) -> None:
    """Tune function trainable: score this trial's candidate and report its fitness with a small
    checkpoint naming it (the weights themselves are on shared storage)."""
    import torch

    torch.set_num_threads(max(1, threads))  # Ray sets OMP threads to 1 for fractional CPUs
    if config.get("stop"):
        return
    candidate = Candidate.from_dict(config["candidate"])
    metrics = score_candidate(context, candidate, config["source_fitness"])
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "candidate.json"), "w") as f:
            json.dump({"id": candidate.id, "fitness": metrics["fitness"]}, f)
        tune.report({**{k: v for k, v in metrics.items() if isinstance(v, float)},
                     "generation": candidate.generation, "candidate_id": candidate.id,
                     "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()},
                    checkpoint=tune.Checkpoint.from_directory(tmp))


class PopulationSearch(BasicVariantGenerator):
    """The first generation's grid, reported unfinished until the evolution ends.

    Why: when a search is finished and no trial is staged, Tune stops (does not cache) the actor
    of a trial that pauses. At every generation barrier all trials pause, so every generation
    would start new trial actors, one at a time (measured: one actor scored all of generations
    1-4 while the other restarted). Unfinished, Tune keeps the actors for reuse.
    """

    def __init__(self, scheduler: "EvolutionScheduler"):
        super().__init__()
        self.scheduler = scheduler

    def is_finished(self) -> bool:
        return super().is_finished() and self.scheduler.done


class EvolutionScheduler(PopulationBasedTraining):
    """Synchronous PBT whose exploit step is one generation of `Evolution` (module docstring)."""

    def __init__(self, evolution: Evolution, on_generation=None):
        super().__init__(time_attr="training_iteration", metric="fitness", mode="max",
                         perturbation_interval=1, synch=True, hyperparam_mutations={"candidate": [0]},
                         log_config=False, require_attrs=True)
        self.evolution = evolution
        self.on_generation = on_generation or (lambda gen: None)
        self._planned_for = -1
        self._plan: dict[str, dict] = {}
        self.done = evolution.finished()
        self.results: list[dict] = []  # every reported result, in order (the phase's history)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        self.results.append({k: result.get(k) for k in (
            "candidate_id", "generation", "fitness", "eval_started", "eval_ended", "pid",
            "node_id", "cached")} | {"trial": trial.trial_id})
        return super().on_trial_result(tune_controller, trial, result)

    def _plan_next(self, trials: list[Trial], time: int) -> None:
        """At the barrier: score table -> Evolution.advance -> a config per trial."""
        scored = []
        for t in trials:
            last = self._trial_state[t].last_result or {}
            candidate = Candidate.from_dict(t.config["candidate"])
            # a trial that failed for good never reported this candidate: it ranks last
            value = last["fitness"] if last.get("candidate_id") == candidate.id else -math.inf
            scored.append((candidate, value))
        scored.sort(key=lambda cf: cf[0].id)
        nxt = self.evolution.advance(scored)
        self.done = nxt is None
        self.on_generation(scored[0][0].generation)
        fit = {c.id: f for c, f in scored}
        ordered = sorted(trials, key=lambda t: t.trial_id)
        self._plan = {t.trial_id: (trial_config(c, fit) if nxt else STOP)
                      for t, c in zip(ordered, nxt or [None] * len(ordered))}
        self._planned_for = time

    def _checkpoint_or_exploit(self, trial: Trial, tune_controller, upper_quantile,
                               lower_quantile) -> None:
        """Called for every trial at the generation barrier: give it its next candidate."""
        time = self._trial_state[trial].last_train_time
        if self._planned_for != time:
            self._plan_next(tune_controller.get_trials(), time)
        trial.set_config(self._plan[trial.trial_id])
        if trial.status == Trial.PAUSED:  # queue it now, so all slots restart at once
            tune_controller._set_trial_status(trial, Trial.PENDING)

    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        """Paused trials with a new candidate first, so a staged trial never blocks the others."""
        paused = [t for t in tune_controller.get_trials() if t.status == Trial.PAUSED
                  and self._trial_state[t].last_train_time < self._next_perturbation_sync]
        if paused:
            return min(paused, key=lambda t: self._trial_state[t].last_train_time)
        return super().choose_trial_to_run(tune_controller)
