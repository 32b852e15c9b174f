"""One loader for every model artifact of a run: full precision (`save_artifact`) or packed
ternary (`save_ternary`, BitNet b1.58 arXiv 2402.17764). Phases after Phase 4 open their input
with `load_model(ref.path)` and need not know which kind they got.
"""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel
from transformers.utils import logging as hf_logging

import forge.models  # noqa: F401  (registers model_type "cognate" with the Auto classes)
from forge.quant.export import load_ternary
from forge.quant.manifest import QUANT_FILE


def is_ternary(artifact_dir: str | Path) -> bool:
    """True when the directory holds a packed ternary artifact (it has quantization.json)."""
    return (Path(artifact_dir) / QUANT_FILE).is_file()


def load_model(artifact_dir: str | Path, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """Open an artifact directory as a runnable model in eval mode, floating tensors in `dtype`.

    A packed ternary artifact is rebuilt with frozen `TernaryLinear` layers (`load_ternary`;
    call `layer.unfreeze()` on each to train them again with STE); any other artifact is read with
    `AutoModelForCausalLM.from_pretrained`. Raises ValueError naming the directory when it does
    not exist or holds no config.json.
    """
    artifact_dir = Path(artifact_dir)
    if not (artifact_dir / "config.json").is_file():
        raise ValueError(f"{artifact_dir}: no config.json; not a model artifact")
    if is_ternary(artifact_dir):
        return load_ternary(artifact_dir, dtype)
    hf_logging.disable_progress_bar()  # no per-load progress bar on the phase's stderr
    return AutoModelForCausalLM.from_pretrained(artifact_dir, dtype=dtype).eval()
