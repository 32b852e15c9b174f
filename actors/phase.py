"""PhaseActor: runs one phase's pure steps inside Ray with the phase's resources."""
from __future__ import annotations

import dataclasses
import traceback

import ray

from actors.errors import one_line
from actors.registry import RegistryClient
from actors.restarts import record_restart
from forge.pipeline.artifacts import ModelRef
from forge.pipeline.phase import PhaseContext, PhaseResult
from forge.pipeline.wandb_sink import open_wandb
from forge.storage import RunStorage


class ActorRecorder:
    """Metrics go to the RegistryActor (waiting for each write); progress stays in the actor."""

    def __init__(self, registry_handle, state: dict):
        self.registry = RegistryClient(registry_handle)
        self.state = state

    def log_metrics(self, run_id, phase, step, values, model=""):
        return self.registry.log_metrics(run_id, phase, step, values, model=model)

    def progress(self, phase, done, total, note=""):
        self.state.update(done=done, total=total, note=note)


@ray.remote(max_concurrency=2)  # one thread runs the phase, one answers progress()
class PhaseActor:
    """Runs `validate_input`, `run` and `validate_output` of one phase."""

    def __init__(self, num_threads: int):
        import torch

        # Ray sets OMP_NUM_THREADS to 1 for fractional CPUs; torch follows the actor's CPU share.
        torch.set_num_threads(max(1, num_threads))
        self._progress = {"done": 0, "total": 0, "note": ""}

    def progress(self) -> dict:
        return dict(self._progress)

    def run(self, phase, inputs: list[ModelRef], spec: dict, registry) -> PhaseResult:
        """Pull the inputs into this node's mirror, run the phase, push its outputs to storage.
        `spec`: run_id, phase, attempt, config, storage (RunStorage) and out_rel (staging)."""
        storage = spec["storage"]
        ctx = PhaseContext(run_id=spec["run_id"], phase=spec["phase"], attempt=spec["attempt"],
                           run_dir=storage.local(spec["run_id"]),
                           out_dir=storage.local(spec["out_rel"]), config=spec["config"],
                           recorder=ActorRecorder(registry, self._progress), storage=storage)
        record_restart(ctx.recorder.registry, ctx.run_id, ctx.phase, model="phase-actor")
        storage.remove(spec["out_rel"])  # a restarted actor starts its staging afresh
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        sink = open_wandb(ctx.config.wandb, ctx.run_id, ctx.phase, ctx.run_dir,
                          {"phase": ctx.phase, "attempt": ctx.attempt})
        if sink is not None:
            ctx.extra_sinks.append(sink)
        try:
            inputs = [localize(ref, storage) for ref in inputs]
            phase.validate_input(inputs, ctx)
            result = phase.run(inputs, ctx)
            phase.validate_output(result, ctx)
            storage.push(spec["out_rel"])
            return result
        except Exception as err:
            # Keep the phase's own traceback: Ray's wrapper would otherwise bury where it failed.
            raise PhaseError(ctx.phase, one_line(err), traceback.format_exc()) from err
        finally:
            if sink is not None:
                sink.finish()
                if storage.local(f"{ctx.run_id}/wandb").is_dir():
                    storage.push(f"{ctx.run_id}/wandb", prune=False)  # other phases' runs stay


def localize(ref: ModelRef, storage: RunStorage) -> ModelRef:
    """`ref` with its artifact pulled into this node's mirror (its path as storage names it)."""
    return dataclasses.replace(ref, path=str(storage.pull(storage.rel(ref.path))))


class PhaseError(RuntimeError):
    """A phase raised; carries the phase name, a one-line message and the traceback."""

    def __init__(self, phase: str, message: str, trace: str = ""):
        super().__init__(f"{phase}: {message}")
        self.phase, self.message, self.trace = phase, message, trace

    def __reduce__(self):
        return PhaseError, (self.phase, self.message, self.trace)
