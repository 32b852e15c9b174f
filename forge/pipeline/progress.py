"""Live progress of a running phase, as a small file in the run storage.

The PhaseActor keeps its progress in memory and the driver polls it; the driver also writes the
latest value here, `runs/<run_id>/progress.json`, so readers without Ray (`forge ui`) can show a
progress bar that moves. One file per run, replaced atomically; only the running phase is in it.
"""
from __future__ import annotations

import json
import time

from forge.storage import RunStorage

PROGRESS_FILE = "progress.json"


def write_progress(storage: RunStorage, run_id: str, phase: str, done: int, total: int,
                   note: str = "") -> None:
    """Record that `phase` of `run_id` is at `done` of `total` (units named by `note`)."""
    record = {"phase": phase, "done": int(done), "total": int(total), "note": note,
              "time": time.time()}
    storage.write_text(f"{run_id}/{PROGRESS_FILE}", json.dumps(record))


def read_progress(storage: RunStorage, run_id: str) -> dict | None:
    """The last progress written for `run_id`, or None when there is none (or it is unreadable:
    a progress bar is not worth an error)."""
    path = storage.pull(f"{run_id}/{PROGRESS_FILE}")
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or not {"phase", "done", "total"} <= set(record):
        return None
    return record
