"""Phase 3 (Quiet-STaR) settings: thoughts, training loop, evaluation of (a)/(b)/(c), gate."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from forge.config.phases import register_phase_config
from forge.config.schema import ConfigError, option
from forge.config.sections import GateConfig, GatedPhaseConfig

PHASE = "quiet_star"


@dataclass(frozen=True)
class ThoughtSettings:
    """Shape of the thoughts and how the model starts using them (arXiv 2403.09629)."""

    length: int = option(3, "Thought tokens between <|startofthought|> and <|endofthought|>.",
                         ge=1, le=64)
    per_position: int = option(2, "Thoughts sampled per position (the REINFORCE baseline is "
                                   "their mean reward, so at least 2).", ge=2, le=16)
    n_ahead: int = option(2, "True tokens after the thought that its reward scores (n_true).",
                          ge=1, le=16)
    temperature: float = option(1.0, "Sampling temperature of thought tokens (training and "
                                      "evaluation).", gt=0)
    mix_init: float = option(0.2, "Mixing weight w of the thought branch at the start.", gt=0,
                             lt=1)
    mixer_hidden: Optional[int] = option(None, "Hidden width of the mixing MLP (null: d_model).",
                                         ge=1)
    embed_init_token: str = option("-", "Text of the single token whose embedding starts both "
                                        "thought embeddings (the paper uses an em dash).")
    embed_init_scale: float = option(1.0, "Multiplier of that embedding.", gt=0)


@dataclass(frozen=True)
class QuietStarTrain:
    """The training loop (optimizer: `optim.quiet_star`, MuGrokfast)."""

    steps: int = option(40, "Optimiser steps.", ge=1)
    batch_size: int = option(6, "Sequences per batch (each gets `per_position` thoughts).", ge=1)
    warmup: int = option(5, "Linear warm-up steps.", ge=0)
    min_lr_ratio: float = option(0.1, "Final lr as a fraction of the peak (cosine).", ge=0, le=1)
    grad_clip: float = option(1.0, "Gradient norm clip.", gt=0)
    reinforce_weight: float = option(1.0, "Weight of the REINFORCE term.", ge=0)
    kl_weight: float = option(0.1, "Weight of KL(reference || model) to the frozen input model "
                                   "(0: no reference is kept).", ge=0)
    text_fraction: float = option(0.0, "Share of batches that are plain text (rest: tasks).",
                                  ge=0, le=1)
    task_weights: dict[str, float] = option(
        default_factory=dict, doc="Task name -> weight of the training mix (empty: data.tasks' "
                                  "weights).")
    log_every: int = option(10, "Steps between metric rows.", ge=1)
    checkpoint_every: int = option(20, "Steps between checkpoints (a restarted phase resumes "
                                       "from the last one, in the run storage).", ge=1)
    keep_checkpoints: int = option(2, "Checkpoints kept.", ge=1)


@dataclass(frozen=True)
class QuietStarEval:
    """The three-way comparison on the validation split (never the test split)."""

    max_examples: int = option(20, "Validation task examples per task scored for answer bits "
                                    "(0: all).", ge=0)
    accuracy_examples: int = option(3, "Examples per task generated for exact match (0: skip).",
                                    ge=0)
    max_new_tokens: int = option(6, "Longest generated answer.", ge=1)
    batch_size: int = option(16, "Examples per scoring batch.", ge=1)


@dataclass(frozen=True)
class QuietStarPhaseConfig(GatedPhaseConfig):
    """Phase 3: teach the input model to think at every position; adopt it only if thinking
    beats both no thoughts and random thoughts (gate.margin, in validation answer bits/byte)."""

    gate: GateConfig = option(default_factory=lambda: GateConfig(margin=0.01),
                              doc="Quality gate; margin in validation answer bits per byte (a "
                                  "difference of a few thousandths is sampling noise at the "
                                  "default sample sizes).")
    thoughts: ThoughtSettings = option(default_factory=ThoughtSettings, doc="Thought settings.")
    train: QuietStarTrain = option(default_factory=QuietStarTrain, doc="Training loop.")
    eval: QuietStarEval = option(default_factory=QuietStarEval, doc="Evaluation.")
    seed: Optional[int] = option(None, "Seed of sampling and batch order (null: run.seed).",
                                 ge=0)
    min_params: int = option(1, "Handoff contract: fewest parameters of the output.", ge=1)
    max_params: int = option(10**10, "Handoff contract: most parameters of the output.", ge=1)

    def check(self, path: str) -> None:
        if self.gate.margin < 0:
            raise ConfigError(f"{path}.gate.margin: got {self.gate.margin}; allowed: a number "
                              ">= 0 (bits per answer byte)")
        if self.min_params > self.max_params:
            raise ConfigError(f"{path}.min_params: got {self.min_params}; allowed: <= max_params")
        for name, weight in self.train.task_weights.items():
            if weight < 0:
                raise ConfigError(f"{path}.train.task_weights.{name}: got {weight}; allowed: >= 0")


register_phase_config(PHASE, QuietStarPhaseConfig)
