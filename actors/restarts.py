"""Restart events: an actor that Ray brought back after a crash says so in the registry.

Ray restarts actors with `max_restarts` and re-runs their pending task (`max_task_retries`), but
the restarted actor starts from nothing: without an event, a phase's progress just jumps back.
Each restart adds one `events/actor_restarts` row (step = how many were recorded before).
"""
from __future__ import annotations

import ray

EVENT = "events/actor_restarts"


def record_restart(registry, run_id: str, phase: str, model: str = "") -> bool:
    """If the calling actor was reconstructed, append a restart event; returns whether it was."""
    if not ray.get_runtime_context().was_current_actor_reconstructed:
        return False
    before = [m for m in registry.metrics(run_id, phase, EVENT) if m["model"] == model]
    registry.log_metrics(run_id, phase, len(before), {EVENT: 1.0}, model=model)
    return True
