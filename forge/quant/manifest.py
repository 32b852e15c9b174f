"""The quantisation manifest of a packed ternary artifact: what is packed, how, and its shapes.

Stored twice with the same content: `quantization.json` (read by `load_ternary`) and the
`quantization` metadata key of model.safetensors (so the weights file alone says how to unpack).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import safe_open

FORMAT = "forge-ternary/1"
QUANT_FILE = "quantization.json"
WEIGHTS_FILE = "model.safetensors"
PACKING = {"name": "base3-5", "trits_per_byte": 5,
           "byte": "sum_i (t_i + 1) * 3^i over 5 consecutive row-major trits, i = 0..4",
           "padding": "trit 0 up to a multiple of 5; the first numel trits are kept",
           "weight": "W_q = trits * scale (scale () per tensor, (out, 1) per channel, or "
                     "(out / group_rows, 1) with each value repeated on its group_rows rows)"}
ENTRY_KEYS = {"packed": str, "scale": str, "shape": list, "numel": int, "scale_shape": list,
              "per_channel": bool, "act_bits": int}


def read_quantization(artifact_dir: str | Path) -> dict[str, Any]:
    """Read and check the manifest of a packed ternary artifact (BitNet b1.58, arXiv 2402.17764).

    Returns the parsed `quantization.json`. Raises `ValueError` naming the file (and the entry) if
    it is missing, not JSON, of another format, malformed, or differs from the copy in the
    metadata of model.safetensors.
    """
    path = Path(artifact_dir) / QUANT_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: missing; not a packed ternary artifact "
                         "(write one with forge.quant.save_ternary)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    check_manifest(manifest, str(path))
    weights = Path(artifact_dir) / WEIGHTS_FILE
    if not weights.is_file():
        raise ValueError(f"{weights}: missing")
    with safe_open(weights, framework="pt") as f:
        stored = (f.metadata() or {}).get("quantization")
    try:
        same = stored is not None and json.loads(stored) == manifest
    except json.JSONDecodeError:
        same = False
    if not same:
        raise ValueError(f"{path}: does not match the quantization metadata of {weights.name}")
    return manifest


def check_manifest(manifest: Any, where: str) -> None:
    """Raise `ValueError` naming `where` and the entry unless `manifest` is well formed."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"{where}: format {got!r}; expected {FORMAT!r}")
    for key in ("packed", "tied"):
        if not isinstance(manifest.get(key), dict):
            raise ValueError(f"{where}: {key!r} must be an object")
    packing = manifest.get("packing")
    if not isinstance(packing, dict) or packing.get("name") != PACKING["name"]:
        raise ValueError(f"{where}: packing {manifest.get('packing')!r}; expected {PACKING['name']!r}")
    for tensor, entry in manifest["packed"].items():
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: entry {tensor} must be an object")
        for key, kind in ENTRY_KEYS.items():
            if not isinstance(entry.get(key), kind):
                raise ValueError(f"{where}: {tensor}.{key} must be a {kind.__name__}, "
                                 f"got {entry.get(key)!r}")
        group = entry.get("group_rows")
        if group is not None and (not isinstance(group, int) or group < 1 or not entry["shape"]
                                  or entry["shape"][0] % group):
            raise ValueError(f"{where}: {tensor}.group_rows {group!r} must be an integer >= 1 "
                             "dividing the first dimension of its shape")
        dims = entry["shape"]
        if not all(isinstance(d, int) and d >= 0 for d in dims) or _prod(dims) != entry["numel"]:
            raise ValueError(f"{where}: {tensor}.shape {dims} does not hold numel "
                             f"{entry['numel']}")


def _prod(dims: list[int]) -> int:
    out = 1
    for d in dims:
        out *= d
    return out
