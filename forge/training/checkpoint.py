"""Trainer checkpoints: weights in safetensors, optimizer/scheduler/RNG state with
`torch.load(weights_only=True)`, every file hashed in a manifest, written atomically.

    checkpoints/<model>/step-000050/{model.safetensors, config.json, trainer.pt, manifest.json}

A checkpoint carries a fingerprint of what it was trained from (input digest + settings); a
restarted trainer only resumes from a checkpoint with the same fingerprint.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from forge.pipeline.artifacts import (ArtifactError, read_manifest, save_weights, verify_artifact,
                                      write_manifest)

PREFIX = "step-"
STATE_FILE = "trainer.pt"


def save_checkpoint(root: str | Path, step: int, model: Any, state: dict, keep: int = 2) -> Path:
    """Write checkpoint `step` under `root` (tmp dir, then rename) and prune all but `keep`."""
    root = Path(root)
    final = root / f"{PREFIX}{step:07d}"
    tmp = root / f".{PREFIX}{step:07d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_weights(model, tmp)
    torch.save(state, tmp / STATE_FILE)
    n_params = sum(p.numel() for p in model.parameters())
    write_manifest(tmp, n_params, metadata={"step": step, "fingerprint": state.get("fingerprint")})
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(root.glob(f"{PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


@dataclass(frozen=True)
class CheckpointPlan:
    """Where and how often a training loop checkpoints; `on_save` runs after each save (e.g.
    push the directory to the run storage)."""

    root: Path
    fingerprint: str
    every: int
    keep: int = 2
    on_save: Callable[[], None] = lambda: None

    def due(self, step: int, total: int) -> bool:
        return step % self.every == 0 or step == total

    def save(self, step: int, model: Any, state: dict) -> Path:
        path = save_checkpoint(self.root, step, model, {**state, "fingerprint": self.fingerprint},
                               self.keep)
        self.on_save()
        return path

    def latest(self) -> Path | None:
        return latest_checkpoint(self.root, self.fingerprint)


def latest_checkpoint(root: str | Path, fingerprint: str) -> Path | None:
    """The newest intact checkpoint under `root` with `fingerprint`; corrupt ones are skipped."""
    root = Path(root)
    if not root.is_dir():
        return None
    for path in sorted(root.glob(f"{PREFIX}*"), reverse=True):
        try:
            manifest = verify_artifact(path)
        except ArtifactError:
            continue  # a half-written or damaged checkpoint: fall back to an older one
        if manifest["metadata"].get("fingerprint") == fingerprint:
            return path
    return None


def load_state(path: str | Path) -> dict:
    """The trainer state of a checkpoint (tensors and plain Python only)."""
    return torch.load(Path(path) / STATE_FILE, weights_only=True, map_location="cpu")


def checkpoint_step(path: str | Path) -> int:
    return int(read_manifest(path)["metadata"]["step"])
