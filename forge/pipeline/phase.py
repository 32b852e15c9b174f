"""The phase protocol: how one step of the pipeline takes models in and hands models on.

A phase is pure library code. It receives `ModelRef`s that passed the previous handoff, a
`PhaseContext` (its config, output directory, metric sink) and returns a `PhaseResult`. The
Ray side (`actors/`) decides where it runs; the phase never sees Ray.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from forge.config import PhaseConfig, PipelineConfig
from forge.pipeline.artifacts import ModelRef, read_manifest
from forge.pipeline.contract import HandoffContract, HandoffError
from forge.storage import RunStorage


class Recorder(Protocol):
    """Where a phase's metrics and progress go (the RegistryActor on Ray, a store in tests)."""

    def log_metrics(self, run_id: str, phase: str, step: int, values: dict[str, float],
                    model: str = "") -> Any: ...

    def progress(self, phase: str, done: int, total: int, note: str = "") -> Any: ...


@dataclass
class PhaseContext:
    """Everything a running phase may use besides its input models."""

    run_id: str
    phase: str
    attempt: int
    run_dir: Path
    out_dir: Path  # staging directory; the driver moves it into place when the phase passes
    config: PipelineConfig
    recorder: Recorder
    extra_sinks: list = field(default_factory=list)  # e.g. a W&B run; each has .log(dict, step)
    storage: RunStorage | None = None  # where the run lives; None: run_dir's parent directory

    def __post_init__(self) -> None:
        self.run_dir, self.out_dir = Path(self.run_dir), Path(self.out_dir)
        if self.storage is None:
            self.storage = RunStorage(self.run_dir.parent)

    @property
    def settings(self) -> PhaseConfig:
        return self.config.phase(self.phase)

    def artifact_dir(self, name: str) -> Path:
        return self.out_dir / name

    def rel(self, path: str | Path) -> str:
        """`path` on this node as a storage path other nodes can `pull`."""
        return self.storage.rel(path)

    def log_metrics(self, step: int, values: dict[str, float], model: str = "") -> None:
        """The one metrics call: registry rows and W&B (when enabled) for this phase."""
        self.recorder.log_metrics(self.run_id, self.phase, step, values, model)
        prefix = f"{model}/" if model else ""
        for sink in self.extra_sinks:
            sink.log({prefix + k: v for k, v in values.items()}, step=step)

    def progress(self, done: int, total: int, note: str = "") -> None:
        self.recorder.progress(self.phase, done, total, note)


@dataclass
class PhaseOutput:
    """One model a phase produced: an artifact directory under `ctx.out_dir`."""

    name: str
    parents: list[tuple[str, str]] = field(default_factory=list)  # (parent model id, method)
    handed_on: bool = True  # False: registered with lineage, but not an input of the next phase


@dataclass
class PhaseResult:
    """What a phase hands back: its models, whether its gate adopted them, and its key number."""

    outputs: list[PhaseOutput]
    adopted: bool = True
    reason: str = ""
    key_metric: tuple[str, float] | None = None
    summary: dict = field(default_factory=dict)


class Phase(Protocol):
    """What every phase implements (torchtune-style recipe interface)."""

    name: ClassVar[str]
    config_class: ClassVar[type]
    input_contract: ClassVar[HandoffContract]
    output_contract: ClassVar[HandoffContract]

    def validate_input(self, inputs: list[ModelRef], ctx: PhaseContext) -> None: ...

    def run(self, inputs: list[ModelRef], ctx: PhaseContext) -> PhaseResult: ...

    def validate_output(self, result: PhaseResult, ctx: PhaseContext) -> None: ...


class BasePhase:
    """Default contract checks; subclasses set the class attributes and implement `run`."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = PhaseConfig
    input_contract: ClassVar[HandoffContract] = HandoffContract()
    output_contract: ClassVar[HandoffContract] = HandoffContract(1, 1)

    def validate_input(self, inputs: list[ModelRef], ctx: PhaseContext) -> None:
        self.input_contract.check(inputs, f"{self.name} input")

    def validate_output(self, result: PhaseResult, ctx: PhaseContext) -> None:
        if not result.adopted:
            return  # the inputs go on unchanged; they already passed the input contract
        refs = [output_ref(ctx, out) for out in result.outputs if out.handed_on]
        self.output_contract.check(refs, f"{self.name} output")


def model_id(run_id: str, phase: str, name: str) -> str:
    """Registry id of a phase's output model: stable across attempts, so re-runs replace rows."""
    return f"{run_id}/{phase}/{name}"


def output_ref(ctx: PhaseContext, out: PhaseOutput) -> ModelRef:
    """The `ModelRef` of an output still in the staging directory."""
    path = ctx.artifact_dir(out.name)
    try:
        manifest = read_manifest(path)
    except Exception as err:
        raise HandoffError(f"{ctx.phase} output {out.name}: {err}") from err
    return ModelRef(id=model_id(ctx.run_id, ctx.phase, out.name), path=str(path),
                    digest=manifest["digest"], params=manifest["params"],
                    metadata=manifest.get("metadata", {}))
