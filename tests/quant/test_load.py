"""`load_model`: one loader for full-precision and packed ternary artifacts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from forge.pipeline.artifacts import save_artifact
from forge.quant import (TernaryLinear, convert_to_ternary, is_ternary, load_model, save_ternary,
                         ternary_layers)
from tests.quant.conftest import small_model

IDS = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(2))


def _logits(model):
    with torch.no_grad():
        return model(IDS).logits


def test_a_full_precision_artifact_loads_as_it_was(tmp_path: Path):
    model = small_model().eval()
    save_artifact(model, tmp_path)
    loaded = load_model(tmp_path)
    assert not is_ternary(tmp_path) and not loaded.training
    assert not any(isinstance(m, TernaryLinear) for m in loaded.modules())
    assert torch.equal(_logits(loaded), _logits(model))


def test_a_packed_artifact_loads_as_a_frozen_ternary_model(tmp_path: Path):
    model = small_model()
    convert_to_ternary(model)
    manifest = save_ternary(model.eval(), tmp_path, parents=["a/b/c"], metrics={"m": 1.5},
                            metadata={"vocab_size": 64})
    loaded = load_model(tmp_path)
    assert is_ternary(tmp_path) and manifest["format"] == "forge-ternary/1"
    assert set(ternary_layers(loaded)) == set(ternary_layers(model))
    assert all(layer.frozen for layer in ternary_layers(loaded).values())
    assert torch.equal(_logits(loaded), _logits(model))
    meta = json.loads((tmp_path / "manifest.json").read_text())
    assert meta["parents"] == ["a/b/c"] and meta["metrics"] == {"m": 1.5}
    assert meta["metadata"]["vocab_size"] == 64 and meta["metadata"]["loader"] == "forge.load_model"


def test_a_directory_without_a_model_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="no config.json; not a model artifact"):
        load_model(tmp_path)
    with pytest.raises(ValueError, match="no config.json"):
        load_model(tmp_path / "missing")


def test_every_entry_point_loads_the_packed_model_or_refuses(tmp_path: Path):
    """forge.load_model, `forge eval`/`forge generate`'s loader and HF's from_pretrained on a
    packed artifact: the first two give the ternary model's logits; HF, which would random-init
    the ternary layers and only warn, raises naming forge.load_model."""
    import forge
    from transformers import AutoModelForCausalLM

    from forge.eval.cli import open_model as cli_load
    from forge.models import CognateForCausalLM

    model = small_model()
    convert_to_ternary(model)
    save_ternary(model.eval(), tmp_path / "packed", parents=[], metrics={},
                 metadata={"vocab_size": 64})
    save_artifact(small_model().eval(), tmp_path / "fp")
    expected = _logits(model)
    assert torch.equal(_logits(forge.load_model(tmp_path / "packed")), expected)
    assert torch.equal(_logits(cli_load(tmp_path / "packed")), expected)
    for loader in (CognateForCausalLM.from_pretrained, AutoModelForCausalLM.from_pretrained):
        with pytest.raises(ValueError, match="packed ternary artifact.*use forge.load_model"):
            loader(tmp_path / "packed")
    fp = forge.load_model(tmp_path / "fp")
    assert torch.equal(_logits(fp), _logits(CognateForCausalLM.from_pretrained(tmp_path / "fp")))
    assert torch.equal(_logits(cli_load(tmp_path / "fp")), _logits(fp))
