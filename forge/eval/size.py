"""Model size: parameter count and bytes, of a model in memory or a saved model folder."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import safe_open

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


@dataclass(frozen=True)
class ModelSize:
    """Parameters, and bytes: on disk for a folder (all files), of the tensors for a model."""

    params: int
    bytes: int


def _folder_size(path: Path) -> ModelSize:
    files = [p for p in path.rglob("*") if p.is_file()]
    weights = [p for p in files if p.suffix == ".safetensors"]
    if not weights:
        raise FileNotFoundError(f"model_size: no .safetensors file in {path}")
    params = 0
    for file in weights:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                params += _numel(f.get_slice(key).get_shape())
    return ModelSize(params, sum(p.stat().st_size for p in files))


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def model_size(model_or_dir: Any) -> ModelSize:
    """A folder: parameters read from its safetensors headers, bytes = every file on disk.
    A torch model: unique parameters (tied weights counted once) and their bytes in memory."""
    if isinstance(model_or_dir, (str, Path)):
        return _folder_size(Path(model_or_dir))
    seen = {id(p): p for p in model_or_dir.parameters()}.values()
    return ModelSize(sum(p.numel() for p in seen), sum(p.numel() * p.element_size() for p in seen))
