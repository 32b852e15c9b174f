"""SQLite registry of runs, phases, models, lineage, metrics and handoffs (DESIGN.md section 3)."""
from forge.registry.gc import collect_garbage
from forge.registry.store import PHASE_STATES, RegistryError, RegistryStore

__all__ = ["RegistryStore", "RegistryError", "PHASE_STATES", "collect_garbage"]
