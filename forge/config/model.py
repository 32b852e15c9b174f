"""Model section: the Cognate architecture's hyper-parameters (DESIGN.md section 5)."""
from __future__ import annotations

from dataclasses import dataclass

from forge.config.schema import option


@dataclass(frozen=True)
class ModelConfig:
    """Size and shape of the Cognate model. Extended by the model issue."""

    d_model: int = option(128, "Hidden size.", ge=8)
