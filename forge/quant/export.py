"""Export and reload a packed ternary model (BitNet b1.58, arXiv 2402.17764).

    out_dir/
      model.safetensors   <layer>.weight_packed (uint8, ceil(n/5)) + <layer>.weight_scale (fp32:
                          (), (out, 1) per channel or (out / group_rows, 1) per row group)
                          for every TernaryLinear; every other tensor as-is (or cast to `dtype`);
                          metadata["quantization"] = the manifest below, as JSON
      quantization.json   the manifest: format, packing, and per packed tensor its shape
      config.json         the Hugging Face config
      manifest.json       sha256 of every file (forge.pipeline.artifacts)

No full-precision latent weight of a ternary layer is stored: `load_ternary` rebuilds each layer
from its trits and scale, and the reloaded model gives the same logits as the model that was saved.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

import forge.models  # noqa: F401  (registers model_type "cognate" with the Auto classes)
from forge.pipeline.artifacts import count_params, write_manifest
from forge.quant.convert import ternary_layers
from forge.quant.manifest import (FORMAT, PACKING, QUANT_FILE, WEIGHTS_FILE, read_quantization)

# manifest.json metadata of every packed artifact: what it is and how to open it.
ARTIFACT_METADATA = {"quantization": "bitnet-b1.58", "packing": PACKING["name"],
                     "format": FORMAT, "loader": "forge.load_model"}
from forge.quant.pack import pack_trits, unpack_trits
from forge.quant.ternary_linear import TernaryLinear


def save_ternary(model: PreTrainedModel, out_dir: str | Path,
                 dtype: torch.dtype | None = None, parents: list[str] | None = None,
                 metrics: dict[str, float] | None = None,
                 metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write `model` (with TernaryLinear layers, arXiv 2402.17764) as a packed artifact; returns
    the quantisation manifest.

    Each ternary weight W_q = trits * gamma is stored as base-3 packed trits (5 per byte, 1.6 bits
    per weight) plus gamma in fp32. `dtype` (e.g. torch.float16) casts every other floating
    tensor; None keeps them as they are. Tied tensors are stored once and listed under "tied".
    `parents`, `metrics` and `metadata` go into manifest.json (forge.pipeline.artifacts), whose
    metadata also says the artifact is ternary and which function loads it (ARTIFACT_METADATA).
    """
    layers = ternary_layers(model)
    if not layers:
        raise ValueError("save_ternary: the model has no TernaryLinear layer; "
                         "call forge.quant.convert_to_ternary first")
    tensors: dict[str, torch.Tensor] = {}
    packed: dict[str, dict[str, Any]] = {}
    for name, layer in layers.items():
        trits, gamma = layer.ternary()  # (out, in) int8, () or (out, 1) fp32
        if layer.group_rows is not None:
            gamma = gamma[::layer.group_rows]  # (G, 1): one stored scale per row group
        tensors[f"{name}.weight_packed"] = pack_trits(trits)
        tensors[f"{name}.weight_scale"] = gamma.float().contiguous()
        packed[f"{name}.weight"] = {
            "packed": f"{name}.weight_packed", "scale": f"{name}.weight_scale",
            "shape": list(trits.shape), "numel": trits.numel(),
            "scale_shape": list(gamma.shape), "per_channel": layer.per_channel,
            "act_bits": layer.act_bits}
        if layer.group_rows is not None:
            packed[f"{name}.weight"]["group_rows"] = layer.group_rows
    tied: dict[str, str] = {}
    seen: dict[int, str] = {}
    for key, value in model.state_dict(keep_vars=True).items():
        if key in packed:
            continue
        if id(value) in seen:  # a tied tensor (lm_head.weight is the embedding)
            tied[key] = seen[id(value)]
            continue
        seen[id(value)] = key
        t = value.detach()
        tensors[key] = (t.to(dtype) if dtype is not None and t.is_floating_point() else t).contiguous()
    manifest = {"format": FORMAT, "packing": PACKING, "packed": packed, "tied": tied,
                "dtype": str(dtype).removeprefix("torch.") if dtype else "as-is"}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, out_dir / WEIGHTS_FILE,
              metadata={"format": "pt", "quantization": json.dumps(manifest, sort_keys=True)})
    (out_dir / QUANT_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    model.config.save_pretrained(out_dir)
    write_manifest(out_dir, count_params(model), parents, metrics,
                   metadata={**(metadata or {}), **ARTIFACT_METADATA})
    return manifest


def round_to_dtype(model: nn.Module, dtype: torch.dtype | None) -> None:
    """Round every floating tensor that `save_ternary(model, dtype=dtype)` casts (all but the
    ternary latent weights) to `dtype` and back, in place: the in-memory model then computes
    exactly what the reloaded artifact computes. None does nothing."""
    if dtype is None:
        return
    ternary = {f"{n}.weight" for n in ternary_layers(model)}
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if name not in ternary and t.is_floating_point():
                t.data = t.data.to(dtype).to(t.dtype)


def load_ternary(artifact_dir: str | Path, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """Rebuild a runnable model with frozen TernaryLinear layers (W_q = trits * gamma, arXiv
    2402.17764) from `save_ternary`'s output.

    Raises `ValueError` naming the file or tensor when the manifest is missing or malformed, a
    packed tensor has the wrong length or bytes, a scale has the wrong shape, or tensors are
    missing or unexpected. Returns the model in eval mode, non-ternary tensors in `dtype`.
    """
    artifact_dir = Path(artifact_dir)
    manifest = read_quantization(artifact_dir)
    if not (artifact_dir / "config.json").is_file():
        raise ValueError(f"{artifact_dir / 'config.json'}: missing; the model cannot be rebuilt")
    config = AutoConfig.from_pretrained(artifact_dir)
    model = AutoModelForCausalLM.from_config(config).to(dtype)
    path = artifact_dir / WEIGHTS_FILE
    with safe_open(path, framework="pt") as f:
        names = set(f.keys())
        for key, entry in manifest["packed"].items():
            _load_layer(model, key, entry, f, names, path)
        ternary = {t for e in manifest["packed"].values() for t in (e["packed"], e["scale"])}
        state = {k: _cast(f.get_tensor(k), dtype) for k in names - ternary}
    result = model.load_state_dict(state, strict=False)
    missing = set(result.missing_keys) - set(manifest["packed"]) - set(manifest["tied"])
    if missing or result.unexpected_keys:
        raise ValueError(f"{path}: tensors missing {sorted(missing)}, "
                         f"unexpected {sorted(result.unexpected_keys)}")
    return model.eval()


def _load_layer(model: nn.Module, key: str, entry: dict[str, Any], f: Any, names: set[str],
                path: Path) -> None:
    """Swap the Linear `key` names for a TernaryLinear frozen to the stored trits and scale."""
    module_name = key.removesuffix(".weight")
    for t in (entry["packed"], entry["scale"]):
        if t not in names:
            raise ValueError(f"{path}: tensor {t} listed in {QUANT_FILE} is missing")
    try:
        linear = model.get_submodule(module_name)
    except AttributeError:
        raise ValueError(f"{QUANT_FILE}: {key} names no module of the model") from None
    if not isinstance(linear, nn.Linear) or list(linear.weight.shape) != entry["shape"]:
        raise ValueError(f"{QUANT_FILE}: {key} is not a Linear of shape {entry['shape']}")
    trits = unpack_trits(f.get_tensor(entry["packed"]), entry["numel"], tuple(entry["shape"]),
                         name=f"{path.name}:{entry['packed']}")
    scale = f.get_tensor(entry["scale"])
    if list(scale.shape) != entry["scale_shape"]:
        raise ValueError(f"{path.name}:{entry['scale']}: shape {list(scale.shape)} != "
                         f"{entry['scale_shape']} in {QUANT_FILE}")
    group_rows = entry.get("group_rows")
    layer = TernaryLinear.from_linear(linear, entry["per_channel"], entry["act_bits"], group_rows)
    if group_rows is not None:
        scale = scale.repeat_interleave(group_rows, dim=0)  # (G, 1) -> (out, 1)
    layer.freeze(trits, scale)
    parent, _, child = module_name.rpartition(".")
    setattr(model.get_submodule(parent), child, layer)


def _cast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return t.to(dtype) if t.is_floating_point() else t
