"""TrainerActor: runs one pure training function with its own CPU/GPU share."""
from __future__ import annotations

from typing import Callable

import ray

from actors.registry import RegistryClient
from actors.restarts import record_restart


@ray.remote(max_concurrency=2)  # one thread trains, one answers progress()
class TrainerActor:
    """Trains one model: `fn(job, log, progress)`; metrics go to the RegistryActor under `name`."""

    def __init__(self, name: str, num_threads: int, registry, run_id: str, phase: str):
        import torch

        # Ray sets OMP_NUM_THREADS=1 for fractional CPUs; follow the actor's real share instead.
        torch.set_num_threads(max(1, num_threads))
        self.name, self.run_id, self.phase = name, run_id, phase
        self.registry = RegistryClient(registry)
        self._progress = {"done": 0, "total": 0}

    def progress(self) -> dict:
        return dict(self._progress)

    def node_id(self) -> str:
        """The Ray node this trainer runs on (placement is recorded in the phase summary)."""
        return ray.get_runtime_context().get_node_id()

    def train(self, fn: Callable, job) -> dict:
        def log(step: int, values: dict) -> None:
            self.registry.log_metrics(self.run_id, self.phase, step, values, model=self.name)

        def progress(done: int, total: int) -> None:
            self._progress.update(done=done, total=total)

        record_restart(self.registry, self.run_id, self.phase, model=self.name)
        return fn(job, log, progress)
