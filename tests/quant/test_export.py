"""Packed export and reload: same logits, 1.6 bits per linear weight, bad artifacts refused."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from forge.pipeline.artifacts import verify_artifact
from forge.quant import (QUANT_FILE, WEIGHTS_FILE, convert_to_ternary, load_ternary, save_ternary,
                         size_report, ternary_layers)
from tests.quant.conftest import small_model

IDS = torch.randint(0, 64, (2, 13), generator=torch.Generator().manual_seed(3))
Q_PROJ = "model.net.layers.0.attn.q_proj"


def _ternary(per_channel: bool = False):
    model = small_model()
    convert_to_ternary(model, per_channel=per_channel)
    return model.eval()


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


@pytest.mark.parametrize("per_channel", [False, True])
def test_reloaded_packed_model_gives_the_same_logits(tmp_path: Path, per_channel: bool):
    model = _ternary(per_channel)
    manifest = save_ternary(model, tmp_path)
    loaded = load_ternary(tmp_path)
    assert torch.equal(_logits(loaded), _logits(model))
    assert set(ternary_layers(loaded)) == set(ternary_layers(model)) == {
        k.removesuffix(".weight") for k in manifest["packed"]}
    assert all(layer.frozen for layer in ternary_layers(loaded).values())
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    assert manifest["tied"] == {"lm_head.weight": "model.embed_tokens.weight"}
    verify_artifact(tmp_path)  # a pipeline artifact: every file matches manifest.json
    with safe_open(tmp_path / WEIGHTS_FILE, framework="pt") as f:
        keys = set(f.keys())
        assert json.loads(f.metadata()["quantization"]) == manifest
        assert f.get_tensor(f"{Q_PROJ}.weight_packed").dtype == torch.uint8
    assert f"{Q_PROJ}.weight" not in keys  # no latent fp weight is stored
    assert "lm_head.weight" not in keys


def test_saving_a_reloaded_model_again_gives_the_same_tensors(tmp_path: Path):
    save_ternary(_ternary(), tmp_path / "a")
    save_ternary(load_ternary(tmp_path / "a"), tmp_path / "b")
    with safe_open(tmp_path / "a" / WEIGHTS_FILE, "pt") as a, \
            safe_open(tmp_path / "b" / WEIGHTS_FILE, "pt") as b:
        assert set(a.keys()) == set(b.keys())
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())


def test_fp16_export_matches_the_model_with_fp16_rounded_other_tensors(tmp_path: Path):
    model = _ternary()
    save_ternary(model, tmp_path, dtype=torch.float16)
    ternary = {f"{n}.weight" for n in ternary_layers(model)}
    with torch.no_grad():  # what the fp16 file holds, back in fp32
        for name, t in model.state_dict(keep_vars=True).items():
            if name not in ternary and t.is_floating_point():
                t.data = t.data.half().float()
    torch.testing.assert_close(_logits(load_ternary(tmp_path)), _logits(model), rtol=0, atol=1e-6)


def test_unfrozen_reloaded_model_trains_again(tmp_path: Path):
    save_ternary(_ternary(), tmp_path)
    loaded = load_ternary(tmp_path).train()
    q = ternary_layers(loaded)[Q_PROJ]
    trits = q.ternary()[0]
    q.unfreeze()
    assert torch.equal(q.ternary()[0], trits)  # requantising the dequantised weight keeps trits
    loaded(IDS, labels=IDS).loss.backward()
    assert q.weight.grad is not None and q.weight.grad.abs().sum() > 0


def test_sizes_bits_per_weight_and_ratios(tmp_path: Path):
    model = small_model()
    fp16_dir = tmp_path / "fp16"
    copy.deepcopy(model).half().save_pretrained(fp16_dir)
    convert_to_ternary(model)
    save_ternary(model, tmp_path / "q")
    report = size_report(tmp_path / "q")
    layers = ternary_layers(model)
    n = sum(layer.weight.numel() for layer in layers.values())
    assert report["linear_weights"] == n
    assert report["linear_bytes"] == sum(-(-l.weight.numel() // 5) + 4 for l in layers.values())
    assert 1.6 <= report["linear_bits_per_weight"] <= report["max_layer_bits_per_weight"] <= 1.62
    assert report["artifact_bytes"] == sum(p.stat().st_size for p in (tmp_path / "q").iterdir())
    assert report["weights_file_bytes"] < (fp16_dir / "model.safetensors").stat().st_size
    assert report["stored_values"] == sum(p.numel() for p in model.parameters()) + 2 * 64
    assert report["ratio_fp32"] == pytest.approx(4 * report["stored_values"] / report["artifact_bytes"])
    assert report["ratio_fp16"] > 1.0 and report["model_bits_per_weight"] < 16
    assert size_report(model) == report  # a model is measured through the same export


def test_model_without_ternary_layers_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="no TernaryLinear"):
        save_ternary(small_model(), tmp_path)


# --- bad artifacts ------------------------------------------------------------------------------

@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    save_ternary(_ternary(), tmp_path)
    return tmp_path


def _rewrite(artifact: Path, edit) -> None:
    """Rewrite model.safetensors with `edit(tensors)` applied, keeping its metadata."""
    path = artifact / WEIGHTS_FILE
    with safe_open(path, "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    edit(tensors)
    save_file(tensors, path, metadata=metadata)


def test_missing_manifest(artifact: Path):
    (artifact / QUANT_FILE).unlink()
    with pytest.raises(ValueError, match=r"quantization\.json: missing"):
        load_ternary(artifact)


def test_missing_config(artifact: Path):
    (artifact / "config.json").unlink()
    with pytest.raises(ValueError, match=r"config\.json: missing"):
        load_ternary(artifact)


def test_corrupt_manifest(artifact: Path):
    (artifact / QUANT_FILE).write_text('{"format": "forge-ternary/1", "packed": {')
    with pytest.raises(ValueError, match=r"quantization\.json: not valid JSON"):
        load_ternary(artifact)


def test_manifest_entry_with_wrong_numel(artifact: Path):
    manifest = json.loads((artifact / QUANT_FILE).read_text())
    manifest["packed"][f"{Q_PROJ}.weight"]["numel"] += 1
    (artifact / QUANT_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=rf"quantization\.json: {Q_PROJ}\.weight\.shape"):
        load_ternary(artifact)


def test_manifest_that_disagrees_with_the_weights_metadata(artifact: Path):
    manifest = json.loads((artifact / QUANT_FILE).read_text())
    manifest["packed"][f"{Q_PROJ}.weight"]["act_bits"] = 4
    (artifact / QUANT_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="does not match the quantization metadata"):
        load_ternary(artifact)


def test_tampered_packed_length(artifact: Path):
    key = f"{Q_PROJ}.weight_packed"
    _rewrite(artifact, lambda t: t.update({key: t[key][:-1].clone()}))
    with pytest.raises(ValueError, match=rf"model\.safetensors:{key}: 819 packed bytes cannot "
                                         r"hold 4096 trits"):
        load_ternary(artifact)


def test_tampered_packed_byte(artifact: Path):
    key = f"{Q_PROJ}.weight_packed"
    _rewrite(artifact, lambda t: t[key].__setitem__(0, 250))
    with pytest.raises(ValueError, match=rf"{key}: byte 250 > 242"):
        load_ternary(artifact)


def test_missing_packed_tensor_and_bad_scale_shape(artifact: Path):
    scale = f"{Q_PROJ}.weight_scale"
    _rewrite(artifact, lambda t: t.update({scale: torch.ones(2)}))
    with pytest.raises(ValueError, match=rf"{scale}: shape \[2\]"):
        load_ternary(artifact)
    _rewrite(artifact, lambda t: t.pop(scale))
    with pytest.raises(ValueError, match=rf"tensor {scale} listed in quantization\.json is missing"):
        load_ternary(artifact)


def test_unexpected_tensor_is_reported(artifact: Path):
    _rewrite(artifact, lambda t: t.update({"model.extra": torch.ones(1)}))
    with pytest.raises(ValueError, match=r"unexpected \['model\.extra'\]"):
        load_ternary(artifact)
