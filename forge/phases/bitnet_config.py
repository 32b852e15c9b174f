"""Phase 4 (BitNet b1.58) settings: which layers go ternary, the STE fine-tuning loop, the gate."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from forge.config.phases import register_phase_config
from forge.config.schema import ConfigError, option
from forge.config.sections import GateConfig, GatedPhaseConfig, Resources
from forge.phases.cognate_config import TrainSettings

PHASE = "bitnet"
DTYPES = ("float16", "bfloat16", "float32")


@dataclass(frozen=True)
class BitnetTrain(TrainSettings):
    """STE fine-tuning of the ternary model's latent weights (same loop as Phase 1)."""

    steps: int = option(60, "Optimiser steps of STE fine-tuning (0 is not allowed: an "
                            "unfine-tuned ternary model is what the gate measures against).",
                        ge=1)
    batch_size: int = option(8, "Sequences per batch.", ge=1)
    warmup: int = option(6, "Linear warm-up steps.", ge=0)
    log_every: int = option(10, "Steps between metric rows.", ge=1)
    checkpoint_every: int = option(20, "Steps between checkpoints (under "
                                       "run_dir/checkpoints/bitnet/).", ge=1)
    divergence_grace: int = option(10, "Steps that only set the divergence baseline.", ge=0)


@dataclass(frozen=True)
class BitnetGate(GateConfig):
    """Adopt the ternary model iff its validation bits per byte after STE fine-tuning are at most
    (1 + margin) times the fp input model's (DESIGN.md section 5, Phase 4)."""

    margin: float = option(0.10, "Largest allowed rise of validation bits per byte, as a fraction "
                                 "of the fp model's (0.10: up to 10% worse).", ge=0)


@dataclass(frozen=True)
class BitnetPhaseConfig(GatedPhaseConfig):
    """Phase 4: one model in, its packed ternary version out (arXiv 2402.17764)."""

    resources: Resources = option(default_factory=lambda: Resources(num_cpus=1.0),
                                  doc="The phase actor: it evaluates and fine-tunes in-process.")
    gate: BitnetGate = option(default_factory=BitnetGate, doc="Quality gate of the phase.")
    train: BitnetTrain = option(default_factory=BitnetTrain, doc="STE fine-tuning loop.")
    keep: tuple[str, ...] = option(("embed", "lm_head", "norm", "mem_rates"),
                                   "Substrings of module names kept in higher precision "
                                   "(forge.quant.DEFAULT_KEEP).")
    per_channel: bool = option(False, "One absmean scale per output row instead of per tensor "
                                      "(+32/in_features bits per weight; makes QK-clip exact).")
    qk_head_scales: bool = option(True, "One scale per attention head for q/k projections "
                                        "(32 bits per head): QK-clip's per-head rescale of the "
                                        "latent rows then bounds the ternary logits exactly.")
    act_bits: int = option(8, "Bits of the per-token absmax activation quantiser.", ge=2, le=16)
    dtype: Literal["float16", "bfloat16", "float32"] = option(
        "float16", "Dtype of the non-ternary tensors (embedding, norms, kept layers) on disk.")
    calibration_documents: int = option(16, "Validation documents whose activations calibrate "
                                            "the per-layer statistics (0: all).", ge=0)
    text_fraction: float = option(0.5, "Share of fine-tuning batches that are plain text "
                                       "(rest: tasks, weighted as data.tasks).", ge=0, le=1)
    data_seed: int = option(4, "Seed of the fine-tuning batch order.", ge=0)

    def check(self, path: str) -> None:
        if any(not k for k in self.keep):
            raise ConfigError(f"{path}.keep: got {list(self.keep)}; allowed: non-empty substrings")


register_phase_config(PHASE, BitnetPhaseConfig)
