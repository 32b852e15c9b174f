"""Model artifacts: a directory with safetensors weights, an HF config.json and a manifest.

    runs/<run_id>/<phase>/<name>/{model.safetensors, config.json, manifest.json}

The manifest lists the sha256 of every file, so a resumed run can tell an intact artifact from a
corrupted or half-written one without trusting timestamps.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


class ArtifactError(RuntimeError):
    """An artifact directory is missing a file, or a file's sha256 does not match its manifest."""


@dataclass(frozen=True)
class ModelRef:
    """A model handed between phases: its registry id, its directory, and what the manifest says."""

    id: str
    path: str  # artifact directory, absolute
    digest: str  # sha256 over the manifest's file hashes
    params: int
    metadata: dict = field(default_factory=dict)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def digest_of(files: dict[str, str]) -> str:
    """One sha256 standing for a whole artifact: the hash of its sorted (name, sha256) pairs."""
    text = "\n".join(f"{name} {sha}" for name, sha in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def count_params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def save_artifact(model: Any, out_dir: str | Path, parents: list[str] | None = None,
                  metrics: dict[str, float] | None = None, metadata: dict | None = None) -> dict:
    """Save an HF model with safetensors and write its manifest; returns the manifest."""
    out_dir = Path(out_dir)
    save_weights(model, out_dir)
    return write_manifest(out_dir, count_params(model), parents, metrics, metadata)


def save_weights(model: Any, out_dir: Path) -> None:
    """`save_pretrained` with safetensors, without transformers' per-shard progress bar."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)


def write_manifest(out_dir: Path, params: int, parents: list[str] | None = None,
                   metrics: dict[str, float] | None = None, metadata: dict | None = None) -> dict:
    """Hash every file in `out_dir` and write manifest.json next to them."""
    files = {p.name: sha256_file(p) for p in sorted(out_dir.iterdir())
             if p.is_file() and p.name != MANIFEST}
    if not any(name.endswith(".safetensors") for name in files):
        raise ArtifactError(f"{out_dir}: no .safetensors weights were written")
    manifest = {"files": files, "digest": digest_of(files), "params": int(params),
                "bytes": sum((out_dir / n).stat().st_size for n in files),
                "parents": list(parents or []), "metrics": dict(metrics or {}),
                "metadata": dict(metadata or {})}
    tmp = out_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    tmp.replace(out_dir / MANIFEST)
    return manifest


def read_manifest(artifact_dir: str | Path) -> dict:
    path = Path(artifact_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{artifact_dir}: no {MANIFEST}") from None
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path}: not valid JSON ({err.msg})") from None


def check_manifest(artifact_dir: Path, manifest: Any) -> dict[str, str]:
    """The manifest's files, refused unless it lists safetensors weights by plain file names
    inside the artifact directory, and the directory holds no symlinks (an input must not
    bring in, or get hashed from, files outside it)."""
    where = artifact_dir / MANIFEST
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not isinstance(manifest.get("digest"), str):
        raise ArtifactError(f"{where}: not a forge manifest (needs 'files', a mapping of file "
                            "name to sha256, and 'digest')")
    for name in files:
        if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
            raise ArtifactError(f"{where}: file entry {name!r} is not a file name inside "
                                f"{artifact_dir}")
    if not any(name.endswith(".safetensors") for name in files):
        raise ArtifactError(f"{where}: lists no .safetensors weights")
    links = sorted(p.name for p in artifact_dir.iterdir() if p.is_symlink())
    if links:
        raise ArtifactError(f"{artifact_dir}: {links[0]} is a symlink; an artifact holds only "
                            "its own files")
    return files


def verify_artifact(artifact_dir: str | Path, expected_digest: str | None = None) -> dict:
    """Check every file against the manifest (and the manifest against the registry's digest)."""
    artifact_dir = Path(artifact_dir)
    manifest = read_manifest(artifact_dir)
    for name, sha in check_manifest(artifact_dir, manifest).items():
        path = artifact_dir / name
        if not path.is_file():
            raise ArtifactError(f"{artifact_dir}: {name} is missing")
        if sha256_file(path) != sha:
            raise ArtifactError(f"{artifact_dir}: {name} does not match its sha256")
    if digest_of(manifest["files"]) != manifest["digest"]:
        raise ArtifactError(f"{artifact_dir}: manifest digest does not match its files")
    if expected_digest is not None and manifest["digest"] != expected_digest:
        raise ArtifactError(f"{artifact_dir}: digest differs from the registry's")
    return manifest


SEARCH_DEPTH = 3  # runs/<run_id>/<phase>/<name>: the run directory is two levels up


def find_upwards(start: Path, name: str) -> Path | None:
    """`start/name`, else the same name in its parents, at most SEARCH_DEPTH levels up: the
    run's files (tokenizer.json, config.yaml, registry.db) seen from a model folder."""
    for folder in [start, *start.parents][:SEARCH_DEPTH + 1]:
        if (folder / name).is_file():
            return folder / name
    return None
