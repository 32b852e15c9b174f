"""Phase 4 (BitNet b1.58) on Ray: one model in, its packed ternary version out. The whole phase
runs inside its PhaseActor (one process, the phase's `resources`): evaluation, calibration and
STE fine-tuning of one small model need no further actors."""
from __future__ import annotations

from forge.phases.bitnet import OUTPUT_METADATA, run_bitnet
from forge.phases.bitnet_config import PHASE, BitnetPhaseConfig
from forge.pipeline import (BasePhase, HandoffContract, PhaseContext, PhaseResult,
                            register_phase)


@register_phase
class BitnetPhase(BasePhase):
    """fp model -> calibrate -> ternary -> STE fine-tune -> packed artifact -> gate."""

    name = PHASE
    config_class = BitnetPhaseConfig
    input_contract = HandoffContract(1, 1)
    output_contract = HandoffContract(1, 1, required_metadata=OUTPUT_METADATA)

    def run(self, inputs, ctx: PhaseContext) -> PhaseResult:
        return run_bitnet(inputs[0], ctx)
