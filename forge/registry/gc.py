"""Clean-up policy: keep the newest N runs, drop failed runs older than D days, compact."""
from __future__ import annotations

import time
from pathlib import Path

from forge.registry.store import RegistryStore


def runs_to_drop(runs: list[dict], keep_runs: int, drop_failed_after_days: float,
                 now: float | None = None) -> list[str]:
    """Ids of runs the policy removes; `runs` newest first. Running runs are never dropped and
    never counted: `keep_runs: 1` keeps the newest finished run while a new one is going."""
    now = time.time() if now is None else now
    cutoff = now - drop_failed_after_days * 86400
    drop = []
    finished = [run for run in runs if run["status"] != "running"]
    for index, run in enumerate(finished):
        too_many = index >= keep_runs
        stale_failure = run["status"] == "failed" and run["created"] < cutoff
        if too_many or stale_failure:
            drop.append(run["id"])
    return drop


def collect_garbage(store: RegistryStore, runs_dir: str | Path, keep_runs: int,
                    drop_failed_after_days: float, dry_run: bool = False) -> list[str]:
    """Apply the policy: delete the runs' rows and directories (in the run storage and this
    node's mirror of it), then compact the database."""
    from forge.storage import RunStorage

    storage = RunStorage(runs_dir)
    drop = runs_to_drop(store.list_runs(), keep_runs, drop_failed_after_days)
    if dry_run:
        return drop
    for run_id in drop:
        store.delete_run(run_id)
        storage.remove(run_id)
    store.compact()
    return drop
