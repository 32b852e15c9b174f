"""RegistryActor: the single writer of a run registry, one named detached actor per database."""
from __future__ import annotations

import hashlib
from pathlib import Path

import ray

from actors.metrics import record_metrics
from forge.registry import RegistryStore
from forge.registry.snapshot import snapshot_registry


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=4)
class RegistryActor:
    """Owns a read-write `RegistryStore`; every write of every actor goes through here."""

    def __init__(self, db_path: str):
        self.store = RegistryStore(db_path)

    def call(self, method: str, *args, **kwargs):
        """Run one `RegistryStore` method (the store serialises access with its own lock)."""
        if method.startswith("_") or not hasattr(self.store, method):
            raise AttributeError(f"RegistryStore has no method {method!r}")
        result = getattr(self.store, method)(*args, **kwargs)
        if method == "log_metrics":  # every metric row passes here: the Prometheus gauges too
            record_metrics(*_metric_call(*args, **kwargs))
        return result

    def ping(self) -> str:
        return str(self.store.path)

    def snapshot(self, storage) -> bool:
        """Copy the database into a URI run storage (forge.registry.snapshot); runs on the head,
        where the file is."""
        return snapshot_registry(self.store, storage)


def _metric_call(run_id, phase, step, values, model="", when=None):
    """(run, phase, model, values) of a `RegistryStore.log_metrics` call."""
    return run_id, phase, model, values


def registry_name(db_path: str | Path) -> str:
    """The actor's name: one registry actor per database file."""
    digest = hashlib.sha256(str(Path(db_path).resolve()).encode()).hexdigest()[:12]
    return f"forge-registry-{digest}"


def get_registry(db_path: str | Path, namespace: str):
    """Get or create the registry actor of `db_path`, pinned to the head node."""
    db_path = str(Path(db_path).resolve())
    return RegistryActor.options(
        name=registry_name(db_path), namespace=namespace, lifetime="detached",
        get_if_exists=True, resources={"node:__internal_head__": 0.001},
    ).remote(db_path)


class RegistryClient:
    """Calls the actor like a store: `client.log_metrics(...)` waits for the write to land."""

    def __init__(self, handle, timeout: float = 60.0):
        self.handle = handle
        self.timeout = timeout

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args, **kwargs):
            return ray.get(self.handle.call.remote(method, *args, **kwargs), timeout=self.timeout)
        return call
