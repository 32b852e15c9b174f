"""`python -m forge.bench bitnet`: BitNet b1.58 (arXiv 2402.17764) artifact size, packing speed
and CPU inference speed of the ternary Cognate vs the full-precision one.

Model: the default config (`config/pipeline.yaml`) with a 2048-token vocabulary, converted as
Phase 4 converts it by default (one scale per attention head for q/k); `--quick` uses a 1-layer,
64-wide variant. Metrics per repetition:
- sizes, measured on disk: the packed artifact with fp16 non-ternary tensors (and with fp32 ones),
  the fp32 and fp16 `save_pretrained` exports of the same model, their ratios, and bits per weight
  of the ternary linear layers and of the whole artifact (`forge.quant.size_report`);
- pack/unpack speed in MB/s of int8 trits (1 byte per trit before packing);
- eval-mode forward tokens/s of the fp model, the reloaded packed model (frozen trits) and the
  in-memory STE model (requantises its latent weights every call). The ternary forward is
  simulated in floating point (dequantised weights, fake-quantised activations): it shows the
  cost of quantisation, not the speed of a ternary kernel;
- the 1-minute load average after each repetition: the machine is shared, and speeds measured
  at different loads are not comparable.
"""
from __future__ import annotations

import copy
import os
import tempfile
import time
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

from forge.config import DEFAULT_CONFIG, load
from forge.models import CognateConfig, CognateForCausalLM, cognate_config_from
from forge.quant import (convert_to_ternary, load_ternary, pack_trits, save_ternary, size_report,
                         ternary_layers, unpack_trits)

VOCAB = 2048
REPEATS = 3
UNITS = {"artifact_bytes": "bytes", "artifact_fp32_others_bytes": "bytes",
         "fp32_export_bytes": "bytes", "fp16_export_bytes": "bytes", "ratio_to_fp32": "x",
         "ratio_to_fp16": "x", "linear_bits_per_weight": "bits", "model_bits_per_weight": "bits",
         "pack_mb_per_s": "MB/s", "unpack_mb_per_s": "MB/s", "fp_tokens_per_s": "tokens/s",
         "ternary_packed_tokens_per_s": "tokens/s", "ternary_ste_tokens_per_s": "tokens/s",
         "load_avg_1min": "runnable"}


def _config(quick: bool) -> CognateConfig:
    model_cfg = load(DEFAULT_CONFIG).model
    small = dict(d_model=64, d_ff=192, n_layers=1) if quick else {}
    return cognate_config_from(model_cfg, VOCAB, **small)


def _shape(quick: bool) -> tuple[int, int]:
    """(batch, seq) of the inference runs."""
    return (2, 32) if quick else (4, 128)


def _file_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())


def _sizes(fp: CognateForCausalLM, ternary: CognateForCausalLM, tmp: Path) -> dict[str, float]:
    """Measured bytes on disk of the fp exports and of the packed artifacts."""
    hf_logging.disable_progress_bar()
    fp.save_pretrained(tmp / "fp32")
    copy.deepcopy(fp).half().save_pretrained(tmp / "fp16")
    save_ternary(ternary, tmp / "q32")
    save_ternary(ternary, tmp / "q16", dtype=torch.float16)
    report = size_report(tmp / "q16")
    fp32, fp16 = _file_bytes(tmp / "fp32"), _file_bytes(tmp / "fp16")
    return {"artifact_bytes": report["artifact_bytes"],
            "artifact_fp32_others_bytes": _file_bytes(tmp / "q32"),
            "fp32_export_bytes": fp32, "fp16_export_bytes": fp16,
            "ratio_to_fp32": fp32 / report["artifact_bytes"],
            "ratio_to_fp16": fp16 / report["artifact_bytes"],
            "linear_bits_per_weight": report["linear_bits_per_weight"],
            "model_bits_per_weight": report["model_bits_per_weight"]}


def _pack_speed(quick: bool) -> dict[str, float]:
    numel = 1_000_000 if quick else 10_000_000
    trits = torch.randint(-1, 2, (numel,), dtype=torch.int8, generator=torch.Generator().manual_seed(0))
    unpack_trits(pack_trits(trits[:1000]), 1000)  # warm-up
    start = time.perf_counter()
    packed = pack_trits(trits)
    mid = time.perf_counter()
    back = unpack_trits(packed, numel)
    end = time.perf_counter()
    if not torch.equal(back, trits):
        raise RuntimeError("bitnet bench: pack/unpack round trip is not exact")
    return {"pack_mb_per_s": numel / 1e6 / (mid - start), "unpack_mb_per_s": numel / 1e6 / (end - mid)}


def _tokens_per_s(model: torch.nn.Module, ids: torch.Tensor) -> float:
    """Best of two timed eval forwards after one warm-up."""
    model.eval()
    best = float("inf")
    with torch.no_grad():
        model(ids)
        for _ in range(2):
            start = time.perf_counter()
            model(ids)
            best = min(best, time.perf_counter() - start)
    return ids.numel() / best


def measure(quick: bool) -> dict[str, float]:
    """One repetition: sizes on disk, packing speed, inference tokens/s."""
    torch.manual_seed(0)
    config = _config(quick)
    fp = CognateForCausalLM(config).eval()
    ternary = copy.deepcopy(fp)
    convert_to_ternary(ternary, head_scales=True)  # as Phase 4 converts by default
    ids = torch.randint(0, VOCAB, _shape(quick), generator=torch.Generator().manual_seed(1))
    with tempfile.TemporaryDirectory() as tmp:
        out = _sizes(fp, ternary, Path(tmp))
        packed = load_ternary(Path(tmp) / "q32")
    with torch.no_grad():
        if not torch.equal(packed(ids).logits, ternary.eval()(ids).logits):
            raise RuntimeError("bitnet bench: reloaded logits differ from the in-memory model")
    out.update(_pack_speed(quick))
    out.update({"fp_tokens_per_s": _tokens_per_s(fp, ids),
                "ternary_packed_tokens_per_s": _tokens_per_s(packed, ids),
                "ternary_ste_tokens_per_s": _tokens_per_s(ternary, ids)})
    # the machine is shared: speeds are only comparable at a similar load
    out["load_avg_1min"] = os.getloadavg()[0]
    return out


def setup(quick: bool) -> dict[str, object]:
    """Static facts: model size, ternary layers, shapes."""
    config = _config(quick)
    model = CognateForCausalLM(config)
    params = sum(p.numel() for p in model.parameters())
    names = convert_to_ternary(model, head_scales=True)
    ternary = sum(m.weight.numel() for m in ternary_layers(model).values())
    return {"params": params, "ternary_layers": len(names), "ternary_weights": ternary,
            "ternary_share_of_params": round(ternary / params, 4),
            "d_model_layers_vocab": (config.d_model, config.n_layers, config.vocab_size),
            "inference_batch_seq": _shape(quick), "non_ternary_dtype_in_artifact": "float16",
            "qk_scales": "one per attention head",
            "pack_trits": 1_000_000 if quick else 10_000_000}
