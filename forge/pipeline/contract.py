"""Handoff contracts: what a phase accepts and what it promises to hand on (DESIGN.md section 5)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from forge.pipeline.artifacts import ModelRef


class HandoffError(ValueError):
    """Models handed to or from a phase break its declared contract."""


@dataclass(frozen=True)
class HandoffContract:
    """Number of models, parameter range and metadata keys that must hold at a phase boundary."""

    min_models: int = 0
    max_models: int = 0
    min_params: int = 0
    max_params: int = 2**62
    required_metadata: tuple[str, ...] = field(default_factory=tuple)

    def problems(self, models: Sequence[ModelRef]) -> list[str]:
        """Every way `models` break the contract (empty when they keep it)."""
        found = []
        if not self.min_models <= len(models) <= self.max_models:
            found.append(f"expected {self.min_models}..{self.max_models} models, got {len(models)}")
        for m in models:
            if not self.min_params <= m.params <= self.max_params:
                found.append(f"model {m.id} has {m.params} parameters, outside "
                             f"{self.min_params}..{self.max_params}")
            missing = [k for k in self.required_metadata if k not in m.metadata]
            if missing:
                found.append(f"model {m.id} lacks metadata {', '.join(missing)}")
        return found

    def check(self, models: Sequence[ModelRef], where: str) -> None:
        """Raise `HandoffError` naming `where` (e.g. 'cognate output') and every problem."""
        found = self.problems(models)
        if found:
            raise HandoffError(f"{where}: " + "; ".join(found))

    def as_dict(self) -> dict:
        return {"min_models": self.min_models, "max_models": self.max_models,
                "min_params": self.min_params, "max_params": self.max_params,
                "required_metadata": list(self.required_metadata)}
