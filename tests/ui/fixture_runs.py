"""Registry rows and artifacts of a finished tiny run and a running one, written directly with
forge's registry, artifact and progress functions (no pipeline run: the dashboard only reads)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file

from forge.evolve import plot_history
from forge.pipeline.artifacts import write_manifest
from forge.pipeline.phase import model_id
from forge.pipeline.progress import write_progress
from forge.registry import RegistryStore
from forge.storage import RunStorage

DONE, LIVE = "20260101-000000-d0d0d0", "20260102-000000-11ee11"
PLAN = ["cognate", "evomerge", "quiet_star", "bitnet"]
COGNATES = ("reasoning", "memory", "adaptive")
QUIET_REASON = ("not adopted: validation answer bits/byte (a) thinking 8.4521, (b) thoughts off "
                "8.4525; needs (a) < (b) - 0.01")


@dataclass
class FixtureRuns:
    storage: RunStorage
    store: RegistryStore  # the writer (the RegistryActor's role); the dashboard reads only

    def advance_live(self, done: int, total: int = 12) -> None:
        """The running run's Cognate moves on: progress, and the loss of the new step."""
        write_progress(self.storage, LIVE, "cognate", done, total, "steps over all trainers")
        self.store.log_metrics(LIVE, "cognate", done, {"loss": 6.0 - 0.25 * done}, model="reasoning")


def config_yaml(plan: list[str], name: str) -> str:
    return yaml.safe_dump({"run": {"name": name}, "pipeline": {"phases": plan}})


def artifact(fx: FixtureRuns, run: str, phase: str, name: str, seed: int,
             parents: list[tuple[str, str]], metrics: dict) -> str:
    """A small real artifact (safetensors + manifest) under runs/<run>/<phase>/<name>, registered."""
    out = fx.storage.local(f"{run}/{phase}/{name}")
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    save_file({"w": torch.randn(16, 8, generator=gen)}, str(out / "model.safetensors"))
    (out / "config.json").write_text('{"model_type": "cognate"}')
    manifest = write_manifest(out, 128, [p for p, _ in parents], metrics, {"phase": phase})
    mid = model_id(run, phase, name)
    fx.store.register_model(mid, run, phase, name, fx.storage.rel(out), manifest["digest"],
                            manifest["bytes"], manifest["params"], {"metrics": metrics}, parents)
    return mid


def finish(fx: FixtureRuns, run: str, phase: str, status: str, key: tuple[str, float],
           size: int, reason: str = "", details: dict | None = None) -> None:
    attempt = fx.store.start_phase(run, phase)
    fx.store.finish_phase(run, phase, attempt, status, summary={
        "adopted": status == "done", "reason": reason, "key_metric": list(key),
        "size_bytes": size, "details": details or {}})


def build_done_run(fx: FixtureRuns) -> None:
    """Four phases: Cognate's three models, an EvoMerge champion merged from two of them (with
    its fitness.png), a Quiet-STaR not adopted, a BitNet model; curves for loss and fitness."""
    fx.store.create_run(DONE, "tiny-done", config_yaml(PLAN, "tiny-done"))
    cognates = [artifact(fx, DONE, "cognate", n, i, [], {"val_bits_per_byte": 5.6 + i / 10})
                for i, n in enumerate(COGNATES)]
    for step in range(0, 12, 2):
        for i, n in enumerate(COGNATES):
            fx.store.log_metrics(DONE, "cognate", step, {"loss": 6.5 - 0.1 * step - 0.05 * i,
                                                         "lr": 1e-3}, model=n)
    finish(fx, DONE, "cognate", "done", ("val_bits_per_byte", 5.654), 490029)
    champion = artifact(fx, DONE, "evomerge", "champion", 7,
                        [(cognates[0], "evomerge:ties"), (cognates[1], "evomerge:ties")],
                        {"fitness": -14.2})
    rows = [{"generation": g, "best": -15.0 + g * 0.4, "mean": -15.5 + g * 0.3,
             "diversity": 0.6 - g * 0.1} for g in range(3)]
    for r in rows:
        fx.store.log_metrics(DONE, "evomerge", r["generation"], {
            "evolve/best": r["best"], "evolve/mean": r["mean"], "evolve/diversity": r["diversity"]})
    plot_history(rows, fx.storage.local(f"{DONE}/evomerge/fitness.png"))
    finish(fx, DONE, "evomerge", "done", ("val_fitness", -14.2), 163000,
           details={"champion_fitness": -14.2, "best_parent_fitness": -14.69,
                    "relative_gain": 0.0334, "generations_scored": 3})
    finish(fx, DONE, "quiet_star", "not_adopted", ("val_answer_bits_per_byte", 8.4521), 0,
           reason=QUIET_REASON, details={"gate_margin": 0.01})
    artifact(fx, DONE, "bitnet", "ternary", 9, [(champion, "bitnet")], {"val_bits_per_byte": 5.665})
    finish(fx, DONE, "bitnet", "done", ("val_bits_per_byte", 5.665), 54600,
           details={"gate": {"fp_bits_per_byte": 5.6787, "margin": 0.1}})
    fx.store.set_run_status(DONE, "done")
    wandb = fx.storage.local(f"{DONE}/wandb/offline-run-20260101_000001-abc123")
    wandb.mkdir(parents=True)
    # Among a W&B offline run file's records: the run's name, <run id>-<phase>, as a protobuf
    # string (length byte, then the bytes; the next field's tag follows).
    name = f"{DONE}-evomerge".encode()
    (wandb / "run-abc123.wandb").write_bytes(b":W&B\x00\x12" + bytes([len(name)]) + name + b"j\x07evomerge")


def build_live_run(fx: FixtureRuns) -> None:
    """A run whose Cognate is at step 3 of 12 (progress.json as the driver writes it)."""
    fx.store.create_run(LIVE, "tiny-live", config_yaml(["cognate", "evomerge"], "tiny-live"))
    fx.store.start_phase(LIVE, "cognate")
    fx.advance_live(3)


def build(runs_dir: Path) -> FixtureRuns:
    storage = RunStorage(runs_dir)
    fx = FixtureRuns(storage, RegistryStore(storage.registry_path))
    build_done_run(fx)
    build_live_run(fx)
    return fx
