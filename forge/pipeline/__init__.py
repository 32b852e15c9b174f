"""The pipeline's pure parts: phase protocol, handoff contracts, artifacts, plans, resume."""
from forge.pipeline.artifacts import (ArtifactError, ModelRef, save_artifact, sha256_file,
                                      verify_artifact)
from forge.pipeline.contract import HandoffContract, HandoffError
from forge.pipeline.phase import (BasePhase, Phase, PhaseContext, PhaseOutput, PhaseResult,
                                  model_id)
from forge.pipeline.registry import PHASES, available_phases, get_phase, register_phase

__all__ = ["ArtifactError", "ModelRef", "save_artifact", "sha256_file", "verify_artifact",
           "HandoffContract", "HandoffError", "BasePhase", "Phase", "PhaseContext", "PhaseOutput",
           "PhaseResult", "model_id", "PHASES", "available_phases", "get_phase", "register_phase"]
