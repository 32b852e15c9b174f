"""How each phase's parallel part runs on Ray: one executor per phase that has one. A phase
without an entry here runs whole inside its PhaseActor (Quiet-STaR and BitNet: one small model
needs no further actors)."""
from __future__ import annotations

from actors.phases.cognate import RayTrainers
from actors.phases.evomerge import TuneGenerations
from forge.pipeline import get_phase

EXECUTORS = {"cognate": RayTrainers, "evomerge": TuneGenerations}


def build_phase(name: str):
    """The phase `name` with its Ray executor (a phase without one is built as it is)."""
    cls = get_phase(name)
    executor = EXECUTORS.get(name)
    return cls(executor()) if executor else cls()
