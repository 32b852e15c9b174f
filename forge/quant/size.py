"""Size accounting of a packed ternary artifact (BitNet b1.58, arXiv 2402.17764): real bytes on
disk, bits per weight of the ternary linear layers and of the whole model, ratios to fp32/fp16.

    linear bits/weight = 8 * (packed bytes + scale bytes) / ternary weights     (-> 1.6 + 32/n)
    model bits/weight  = 8 * artifact bytes on disk / stored values
    ratio_fp32         = 4 bytes * stored values / artifact bytes   (fp16: 2 bytes)

"Stored values" counts every tensor element of the model once (ternary weights, embeddings,
norms, biases, buffers; a tied head once). Artifact bytes include headers, config and manifests.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from forge.quant.export import save_ternary
from forge.quant.manifest import WEIGHTS_FILE, read_quantization


def size_report(model_or_dir: nn.Module | str | Path,
                dtype: torch.dtype | None = None) -> dict[str, float]:
    """Size figures (module docstring formulas; BitNet b1.58, arXiv 2402.17764) of an artifact
    directory, or of a model exported (with `dtype`) to a temporary directory. Keys: artifact_bytes, weights_file_bytes, linear_weights, linear_bytes,
    linear_bits_per_weight, max_layer_bits_per_weight, stored_values, model_bits_per_weight,
    fp32_bytes, fp16_bytes, ratio_fp32, ratio_fp16."""
    if isinstance(model_or_dir, nn.Module):
        with tempfile.TemporaryDirectory() as tmp:
            save_ternary(model_or_dir, tmp, dtype)
            return size_report(tmp)
    root = Path(model_or_dir)
    manifest = read_quantization(root)
    with safe_open(root / WEIGHTS_FILE, framework="pt") as f:
        nbytes = {k: _nbytes(f.get_slice(k)) for k in f.keys()}
        numel = {k: _numel(f.get_slice(k)) for k in f.keys()}
    linear_weights = linear_bytes = 0
    layer_bits = []
    ternary = set()
    for entry in manifest["packed"].values():
        b = nbytes[entry["packed"]] + nbytes[entry["scale"]]
        linear_weights, linear_bytes = linear_weights + entry["numel"], linear_bytes + b
        layer_bits.append(8 * b / max(entry["numel"], 1))
        ternary |= {entry["packed"], entry["scale"]}
    others = sum(n for k, n in numel.items() if k not in ternary)
    stored = linear_weights + others
    artifact = sum(p.stat().st_size for p in root.iterdir() if p.is_file())
    return {"artifact_bytes": artifact, "weights_file_bytes": (root / WEIGHTS_FILE).stat().st_size,
            "linear_weights": linear_weights, "linear_bytes": linear_bytes,
            "linear_bits_per_weight": 8 * linear_bytes / max(linear_weights, 1),
            "max_layer_bits_per_weight": max(layer_bits, default=0.0),
            "stored_values": stored, "model_bits_per_weight": 8 * artifact / max(stored, 1),
            "fp32_bytes": 4 * stored, "fp16_bytes": 2 * stored,
            "ratio_fp32": 4 * stored / artifact, "ratio_fp16": 2 * stored / artifact}


def _numel(s) -> int:
    out = 1
    for d in s.get_shape():
        out *= d
    return out


_ITEMSIZE = {"U8": 1, "I8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F16": 2, "BF16": 2,
             "I16": 2, "U16": 2, "F32": 4, "I32": 4, "U32": 4, "F64": 8, "I64": 8, "U64": 8}


def _nbytes(s) -> int:
    return _numel(s) * _ITEMSIZE[s.get_dtype()]
