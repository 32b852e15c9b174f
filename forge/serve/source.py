"""What `forge serve` and `forge export` start from: a model folder, its tokenizer, its lineage.

MODEL is an artifact folder (config.json + model.safetensors [+ quantization.json]) or a
registered id `run/phase/name` looked up in --runs-dir. The tokenizer is the run's tokenizer.json,
found in the folder or the run directory above it, unless one is given.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge.data.tokenizer import TOKENIZER_FILE
from forge.pipeline.artifacts import find_upwards
from forge.registry import RegistryError, RegistryStore

REGISTRY_FILE = "registry.db"


class ModelSourceError(ValueError):
    """MODEL, its tokenizer or its files cannot be used (one line naming which)."""


@dataclass(frozen=True)
class ModelSource:
    """A checked model folder with its tokenizer and what the registry knows of it."""

    path: Path
    tokenizer: Path
    model_id: str | None = None  # registry id, when the folder is a registered model
    manifest: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] | None = None  # registry lineage tree {id, method, parents}

    @property
    def name(self) -> str:
        """The model name clients use: its registry id, else the folder name."""
        return self.model_id or self.path.name


def _registry_info(path: Path, spec: str, runs_dir: str) -> tuple[Path, str | None, dict | None]:
    """(folder, id, lineage) of a registered id or of a folder inside a runs directory."""
    db = Path(runs_dir) / REGISTRY_FILE
    candidates = [(db, spec)] if spec.count("/") == 2 and not path.is_dir() else []
    found = find_upwards(path.resolve().parent, REGISTRY_FILE) if path.is_dir() else None
    if found is not None:
        candidates.append((found, path.resolve().relative_to(found.parent).as_posix()))
    for file, model_id in candidates:
        if not file.is_file():
            continue
        store = RegistryStore(file, readonly=True)
        try:
            row = store.get_model(model_id)
            folder = path if path.is_dir() else file.parent / row["path"]
            return folder, model_id, store.lineage_tree(model_id)
        except RegistryError:
            continue
        finally:
            store.close()
    return path, None, None


def resolve_model(spec: str, runs_dir: str = "runs", tokenizer: str | None = None) -> ModelSource:
    """Check MODEL and find its tokenizer; ModelSourceError names what is missing."""
    path, model_id, lineage = _registry_info(Path(spec), spec, runs_dir)
    if not path.is_dir():
        raise ModelSourceError(f"MODEL {spec!r}: neither a model folder nor a model id in "
                               f"{Path(runs_dir) / REGISTRY_FILE}")
    if not (path / "config.json").is_file():
        raise ModelSourceError(f"MODEL {path}: no config.json (not a saved model folder)")
    tok = Path(tokenizer) if tokenizer else find_upwards(path.resolve(), TOKENIZER_FILE)
    if tok is None or not tok.is_file():
        raise ModelSourceError(f"MODEL {path}: no {TOKENIZER_FILE} in it or its run directory; "
                               "pass --tokenizer")
    manifest: dict[str, Any] = {}
    if (path / "manifest.json").is_file():
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except json.JSONDecodeError as err:
            raise ModelSourceError(f"{path / 'manifest.json'}: not valid JSON ({err.msg})") from None
    return ModelSource(path, tok, model_id, manifest, lineage)


def load_source(source: ModelSource, dtype: Any = None) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer) of a resolved source; ModelSourceError on a bad file.

    Packed ternary artifacts are unpacked once here (`forge.load_model` keeps the
    dequantised weight next to the trits), so serving one costs what serving fp costs."""
    import torch
    from safetensors import SafetensorError

    from forge.data.errors import DataError
    from forge.data.tokenizer import load_tokenizer
    import forge

    try:
        model = forge.load_model(source.path, dtype or torch.float32)
        tok = load_tokenizer(source.tokenizer)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError, DataError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelSourceError(f"MODEL {source.path}: cannot load ({first})") from None
    if len(tok) > model.config.vocab_size:
        raise ModelSourceError(f"{source.tokenizer}: {len(tok)} tokens but the model has "
                               f"vocab_size {model.config.vocab_size}; use the run's tokenizer")
    return model, tok
