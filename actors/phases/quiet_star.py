"""Phase 3 on Ray: the whole phase runs inside its PhaseActor, on the actor's CPUs (or GPU
fraction); one model is small enough that nothing here needs more actors."""
from __future__ import annotations

from forge.phases.quiet_star import OUTPUT, run_quiet_star
from forge.phases.quiet_star_config import PHASE, QuietStarPhaseConfig
from forge.pipeline import (BasePhase, HandoffContract, PhaseContext, PhaseResult,
                            register_phase)
from forge.pipeline.phase import output_ref

OUTPUT_METADATA = ("vocab_size", "thought_len", "input_model")


@register_phase
class QuietStarPhase(BasePhase):
    """One model in (EvoMerge's champion or any registered model) -> the thinking model out,
    adopted only if thinking beats thoughts-off and random thoughts on validation."""

    name = PHASE
    config_class = QuietStarPhaseConfig
    input_contract = HandoffContract(1, 1)

    def run(self, inputs, ctx: PhaseContext) -> PhaseResult:
        return run_quiet_star(inputs, ctx)

    def validate_output(self, result: PhaseResult, ctx: PhaseContext) -> None:
        if not result.adopted:
            return  # the input goes on unchanged; it already passed the input contract
        s = ctx.settings
        contract = HandoffContract(1, 1, s.min_params, s.max_params, OUTPUT_METADATA)
        contract.check([output_ref(ctx, o) for o in result.outputs if o.name == OUTPUT],
                       "quiet_star output")
