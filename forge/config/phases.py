"""The config class of each phase, found by phase name.

Phase modules register their section class here so the loader can type-check
`phases.<name>` without importing the phases themselves.
"""
from __future__ import annotations

from forge.config.sections import PhaseConfig

PHASE_CONFIGS: dict[str, type] = {}


def register_phase_config(name: str, cls: type = PhaseConfig) -> type:
    """Declare that phase `name` exists and that `phases.<name>` is read as `cls`."""
    if not issubclass(cls, PhaseConfig):
        raise TypeError(f"{cls.__name__} must extend PhaseConfig")
    PHASE_CONFIGS[name] = cls
    return cls


def unregister_phase_config(name: str) -> None:
    """Forget a phase (tests that define their own phases use this to clean up)."""
    PHASE_CONFIGS.pop(name, None)
