"""Data section: text sources, reasoning tasks, tokenizer and splits (DESIGN.md section 6)."""
from __future__ import annotations

from dataclasses import dataclass

from forge.config.schema import option


@dataclass(frozen=True)
class DataConfig:
    """Where training text and tasks come from. Extended by the data issue."""

    seed: int = option(0, "Seed of splits, sampling and batch order.", ge=0)
