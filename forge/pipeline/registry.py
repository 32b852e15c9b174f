"""Phases by name: the built-ins of `forge.phases.BUILT_IN` are imported on first lookup (each
registers its class); tests add their own with `register_phase`."""
from __future__ import annotations

from forge.config.phases import register_phase_config, unregister_phase_config

PHASES: dict[str, type] = {}


def register_phase(cls: type) -> type:
    """Class decorator: make a phase available to plans and its config section to the loader."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    PHASES[cls.name] = cls
    register_phase_config(cls.name, cls.config_class)
    return cls


def unregister_phase(name: str) -> None:
    PHASES.pop(name, None)
    unregister_phase_config(name)


def get_phase(name: str) -> type:
    from forge.phases import load_phase_module

    if name not in PHASES:
        load_phase_module(name)
    if name not in PHASES:
        raise KeyError(f"unknown phase {name!r}; available: {', '.join(sorted(PHASES)) or '(none)'}")
    return PHASES[name]


def available_phases() -> list[str]:
    """Phases a config may name: every registered phase config (runnable or not yet)."""
    import forge.phases  # noqa: F401
    from forge.config.phases import PHASE_CONFIGS

    return sorted(set(PHASES) | set(PHASE_CONFIGS))
