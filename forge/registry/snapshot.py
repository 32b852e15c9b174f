"""The registry's copy in a URI run storage: the head's disk is not the only place it lives.

With `run.runs_dir` a URI the registry database sits on the head node's disk (SQLite needs a
local file). After every phase the RegistryActor writes a consistent snapshot of it into the
storage (`registry-snapshot.db`), so a new head, or any machine with the same `--runs-dir URI`,
gets the runs, models and metrics back: `forge status` and `forge resume` restore the snapshot
when this machine has no registry of its own.
"""
from __future__ import annotations

import shutil

from forge.registry.store import RegistryStore
from forge.storage import RunStorage

SNAPSHOT = "registry-snapshot.db"


def snapshot_registry(store: RegistryStore, storage: RunStorage) -> bool:
    """Copy the registry into the run storage; False (nothing to do) for a plain directory,
    where the registry already lives beside the runs."""
    if not storage.remote:
        return False
    store.backup(storage.local(SNAPSHOT))
    storage.push(SNAPSHOT)
    return True


def restore_registry(storage: RunStorage) -> bool:
    """Put the storage's snapshot where this machine's registry belongs, when there is none
    yet; True when one was restored."""
    if not storage.remote or storage.registry_path.exists() or not storage.exists(SNAPSHOT):
        return False
    copy = storage.pull(SNAPSHOT)
    tmp = storage.registry_path.with_name(f".{storage.registry_path.name}.restoring")
    shutil.copyfile(copy, tmp)
    tmp.replace(storage.registry_path)
    return True
