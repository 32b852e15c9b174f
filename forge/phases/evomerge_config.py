"""Phase 2 (EvoMerge) settings: the evolution, the fitness evaluation and the Tune trials."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from forge.config.phases import register_phase_config
from forge.config.schema import ConfigError, option
from forge.config.sections import PhaseConfig, Resources
from forge.evolve.settings import EvolveSettings

PHASE = "evomerge"


@dataclass(frozen=True)
class SampleSizes:
    """How much of a split one evaluation reads (fitness runs once per candidate: keep it small)."""

    max_documents: int = option(8, "Held-out documents scored for text bits per byte.", ge=1)
    max_task_examples: int = option(4, "Task examples per task (answer log-likelihood and exact "
                                       "match).", ge=1)
    max_new_tokens: int = option(6, "Greedy tokens generated per answer for exact match.", ge=1)


def _report_sizes() -> SampleSizes:
    return SampleSizes(max_documents=16, max_task_examples=8, max_new_tokens=8)


@dataclass(frozen=True)
class EvoMergePhaseConfig(PhaseConfig):
    """Phase 2: a population of merges of the Phase 1 models evolved with Ray Tune trials."""

    resources: Resources = option(default_factory=lambda: Resources(num_cpus=0.0),
                                  doc="The coordinating actor (it runs Tune's driver loop; the "
                                      "trials have their own resources).")
    evolve: EvolveSettings = option(default_factory=EvolveSettings,
                                    doc="Population, operators, diversity, early stop, fitness.")
    fitness_eval: SampleSizes = option(default_factory=SampleSizes,
                                       doc="Validation sample scored per candidate.")
    report_eval: SampleSizes = option(default_factory=_report_sizes,
                                      doc="Test sample on which the champion is compared with "
                                          "each parent (reported, never used to select).")
    trial_cpus: float = option(1.0, "CPUs per Tune trial (one trial evaluates one candidate; "
                                    "free CPUs / trial_cpus trials run at once).", gt=0)
    trial_gpus: float = option(0.25, "GPU fraction per trial when the cluster has GPUs.",
                               ge=0, le=1)
    seed: Optional[int] = option(None, "Seed of recipes and mutations (null: run.seed).", ge=0)
    keep_generations: int = option(2, "Generations whose candidate weights stay on disk (the "
                                      "champion's are always kept).", ge=2)
    max_failures: int = option(2, "Tune retries of a failed trial (it rebuilds its candidate).",
                               ge=0)
    min_params: int = option(1, "Handoff contract: fewest parameters of the champion.", ge=1)
    max_params: int = option(10**10, "Handoff contract: most parameters of the champion.", ge=1)

    def check(self, path: str) -> None:
        self.evolve.check(f"{path}.evolve")
        if self.min_params > self.max_params:
            raise ConfigError(f"{path}.min_params: got {self.min_params}; allowed: <= max_params")


register_phase_config(PHASE, EvoMergePhaseConfig)
