"""Phase 1 (Cognate) settings: three specialisations trained from one seed model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from forge.config.phases import register_phase_config
from forge.config.schema import ConfigError, option
from forge.config.sections import PhaseConfig, Resources

PHASE = "cognate"


@dataclass(frozen=True)
class Specialisation:
    """What makes one Cognate model differ from its siblings. Nothing here changes a tensor
    shape: all three start from one initialisation and must stay mergeable (DESIGN.md section 5).
    The spec's "memory capacity" maps to how many tokens the memory reads per update
    (`memory_chunk`) and the attention window, which change no parameter shape."""

    name: str = option(doc="Model name, e.g. 'reasoning'.")
    act_threshold: float = option(0.9, "ACT halting threshold of this model.", gt=0, lt=1)
    memory_chunk: Optional[int] = option(None, "Tokens per memory update (null: model default).",
                                         ge=1)
    window: Optional[int] = option(None, "Attention window (null: model default).", ge=1)
    data_seed: int = option(0, "Seed of this model's batch order and sampling.", ge=0)
    text_fraction: float = option(0.5, "Share of batches that are plain text (rest: tasks).",
                                  ge=0, le=1)
    task_weights: dict[str, float] = option(
        default_factory=dict, doc="Task name -> weight in this model's task mix (others: 0 when "
                                  "any is given, else data.tasks' weights).")


def _default_specialisations() -> tuple[Specialisation, ...]:
    return (Specialisation("reasoning", 0.95, None, None, 1, 0.3,
                           {"chain_sum": 2.0, "basic_arithmetic": 2.0, "word_sorting": 1.0}),
            Specialisation("memory", 0.90, 32, None, 2, 0.7, {"letter_counting": 1.0,
                                                              "leg_counting": 1.0}),
            Specialisation("adaptive", 0.99, 8, 32, 3, 0.5, {}))


@dataclass(frozen=True)
class TrainSettings:
    """The training loop of each Cognate model."""

    steps: int = option(150, "Optimiser steps per model.", ge=1)
    batch_size: int = option(16, "Sequences per batch.", ge=1)
    warmup: int = option(15, "Linear warm-up steps.", ge=0)
    min_lr_ratio: float = option(0.1, "Final lr as a fraction of the peak (cosine decay).",
                                 ge=0, le=1)
    grad_clip: float = option(1.0, "Gradient norm clip.", gt=0)
    log_every: int = option(10, "Steps between metric rows.", ge=1)
    checkpoint_every: int = option(50, "Steps between checkpoints (a killed trainer loses at "
                                       "most this many).", ge=1)
    keep_checkpoints: int = option(2, "Checkpoints kept per model.", ge=1)
    divergence_factor: float = option(3.0, "Stop when the smoothed loss exceeds this multiple of "
                                           "its running minimum.", gt=1)
    divergence_grace: int = option(20, "Steps that only set the divergence baseline.", ge=0)
    max_recoveries: int = option(0, "On divergence, reload the last checkpoint with a lower lr "
                                     "this many times before failing (0: fail at once).", ge=0)
    lr_backoff: float = option(0.5, "Learning-rate factor applied at each recovery.", gt=0, lt=1)
    gradient_checkpointing: bool = option(False, "Recompute block activations in backward (what "
                                                 "lets three 25M models share a 6 GB GPU).")


@dataclass(frozen=True)
class CognatePhaseConfig(PhaseConfig):
    """Phase 1: a seed model, three specialists trained concurrently, diversity and handoff."""

    resources: Resources = option(default_factory=lambda: Resources(num_cpus=0.0),
                                  doc="The coordinating actor (the trainers have their own).")
    specialisations: tuple[Specialisation, ...] = option(default_factory=_default_specialisations,
                                                         doc="One model per entry.")
    train: TrainSettings = option(default_factory=TrainSettings, doc="Training loop settings.")
    trainer_cpus: Optional[float] = option(None, "CPUs per trainer (null: an equal share of the "
                                                 "cluster's CPUs).", gt=0)
    trainer_gpus: float = option(0.33, "GPU fraction per trainer when the cluster has GPUs "
                                       "(three share one GPU at 0.33).", ge=0, le=1)
    trainer_max_restarts: int = option(3, "Ray restarts of a trainer; it resumes from its last "
                                          "checkpoint.", ge=0)
    init_seed: Optional[int] = option(None, "Seed of the shared initialisation (null: run.seed).",
                                      ge=0)
    diversity_floor: float = option(0.01, "Smallest allowed pairwise cosine distance of the "
                                          "models' deltas from the seed.", ge=0, le=2)
    min_params: int = option(1, "Handoff contract: fewest parameters per model.", ge=1)
    max_params: int = option(10**10, "Handoff contract: most parameters per model.", ge=1)
    min_prompt_swap_gain: Optional[float] = option(
        0.02, "Context check: fewest bits per answer byte a specialist's own prompt must save over "
              "another question's prompt on validation (forge.eval.context); below it the phase "
              "fails, because a model that ignores its prompt must not be handed on. null: "
              "measure and report only (test-sized runs too short to learn anything).")
    context_examples: int = option(30, "Validation questions per task for the context check.",
                                   ge=2)

    def actor_requests(self) -> list[tuple[str, str, Resources]]:
        """The coordinator and one trainer (an unset trainer_cpus is an equal share: always fits)."""
        trainer = Resources(num_cpus=self.trainer_cpus or 0.0, num_gpus=self.trainer_gpus)
        return super().actor_requests() + [("trainer_cpus", "trainer_gpus", trainer)]

    def check(self, path: str) -> None:
        names = [s.name for s in self.specialisations]
        if len(set(names)) != len(names):
            raise ConfigError(f"{path}.specialisations: names must be unique, got {names}")
        if not names:
            raise ConfigError(f"{path}.specialisations: got []; allowed: at least one")
        if self.min_params > self.max_params:
            raise ConfigError(f"{path}.min_params: got {self.min_params}; allowed: <= max_params")


register_phase_config(PHASE, CognatePhaseConfig)
