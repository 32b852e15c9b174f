"""Engine-level config sections: run, Ray, resources, quality gates, W&B, registry clean-up."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from forge.config.schema import ConfigError, option


@dataclass(frozen=True)
class RunConfig:
    """Where a run lives and how it is seeded."""

    name: str = option("forge", "A label for the run, shown in `forge status`.")
    seed: int = option(0, "Seed for every random choice of the run.", ge=0)
    runs_dir: str = option("runs", "Where runs live: a directory every node sees, or a URI "
                                   "(s3://bucket/prefix, gs://..., file:///...) when nodes share "
                                   "no disk; see docs/cluster.md. registry.db sits beside a "
                                   "directory, or on the head node's disk for a URI.")
    device: Literal["auto", "cpu", "cuda"] = option(
        "auto", "Torch device: 'auto' uses CUDA when torch sees it, else the CPU.")


@dataclass(frozen=True)
class RayConfig:
    """How `forge.submit` finds or starts a Ray cluster."""

    address: Optional[str] = option(None, "Cluster address; None means RAY_ADDRESS, a running local "
                                          "cluster, else a local Ray started for this run.")
    namespace: str = option("forge", "Ray namespace; the RegistryActor is named inside it.")
    num_cpus: Optional[int] = option(None, "CPUs of a local Ray this command starts (None: all).", ge=1)
    num_gpus: Optional[float] = option(None, "Logical GPUs of a local Ray it starts (None: detected).",
                                       ge=0)
    include_dashboard: bool = option(True, "Start the dashboard with a local Ray (costs ~1 GiB).")
    object_store_mb: int = option(256, "Object store of a local Ray, in MiB (Ray's minimum is 75).",
                                  ge=75)
    placement: Literal["spread", "pack"] = option(
        "pack", "'spread' places a phase's trainers and trials on different nodes when it can; "
                "'pack' fills one node first (Ray's default).")
    connect_timeout_s: float = option(10.0, "How long to wait for an explicit --address.", gt=0)
    phase_timeout_s: float = option(7200.0, "Longest a phase may run before the driver gives up.",
                                    gt=0)


@dataclass(frozen=True)
class Resources:
    """Ray resources of one actor."""

    num_cpus: float = option(1.0, "CPUs reserved for the actor; torch threads follow it.", ge=0)
    num_gpus: float = option(0.0, "GPU fraction; used only when the cluster has GPUs.", ge=0, le=8)
    custom: dict[str, float] = option(default_factory=dict,
                                      doc="Custom Ray resources, e.g. {gpu_box: 1} to pin a node.")


@dataclass(frozen=True)
class GateConfig:
    """What happens when a phase's output does worse than its input (DESIGN.md section 5)."""

    on_fail: Literal["fallback", "fail"] = option(
        "fallback", "'fallback' hands the input on unchanged; 'fail' stops the run.")
    margin: float = option(0.0, "How much better (in the phase's metric) the output must be.")


@dataclass(frozen=True)
class PhaseConfig:
    """Settings every phase has; a phase's own section extends this."""

    resources: Resources = option(default_factory=Resources, doc="Resources of the phase's actor.")
    max_restarts: int = option(2, "Ray restarts of the phase's actors after a crash.", ge=0)

    def actor_requests(self) -> list[tuple[str, str, Resources]]:
        """Resources of every kind of actor the phase starts, with the keys (CPU, GPU) that set
        them: forge.submit checks that each fits one node before any work starts. A phase that
        starts workers of its own (Phase 1's trainers) adds them."""
        return [("resources.num_cpus", "resources.num_gpus", self.resources)]


@dataclass(frozen=True)
class GatedPhaseConfig(PhaseConfig):
    """A phase whose output must beat its input: only these have a `gate` (the driver applies
    `gate.on_fail` when the phase says its output was not adopted)."""

    gate: GateConfig = option(default_factory=GateConfig, doc="Quality gate of the phase.")


@dataclass(frozen=True)
class WandbConfig:
    """Weights & Biases logging; never prompts, files live under the run directory."""

    mode: Literal["offline", "disabled", "online"] = option("offline", "W&B mode.")
    project: str = option("agent-forge", "W&B project name.")


@dataclass(frozen=True)
class RegistryConfig:
    """Clean-up policy applied by `forge gc`."""

    keep_runs: int = option(20, "Keep the newest N runs; older ones are deleted.", ge=1)
    drop_failed_after_days: float = option(7.0, "Delete failed runs older than this many days.",
                                           ge=0)


@dataclass(frozen=True)
class PlanConfig:
    """Which phases run, in order."""

    phases: tuple[str, ...] = option((), "Phase names in the order they run.")
    inputs: tuple[str, ...] = option((), "Models the first planned phase starts from: artifact "
                                         "directories or registered model ids (run/phase/name); "
                                         "copied into the run under inputs/.")

    def check(self, path: str) -> None:
        seen = set()
        for name in self.phases:
            if name in seen:
                raise ConfigError(f"{path}.phases: {name!r} appears twice; each phase runs once")
            seen.add(name)
