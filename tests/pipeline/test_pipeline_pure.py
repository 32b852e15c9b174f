"""Artifacts, contracts, plans and resume decisions: the engine's pure parts."""
import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from forge.config import ConfigError
from forge.pipeline import ArtifactError, HandoffContract, HandoffError, ModelRef, save_artifact, verify_artifact
from forge.pipeline.plan import select_phases, skip_decision


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, n_positions=8))


def test_artifact_manifest_and_verify(tmp_path, tiny_model):
    m = save_artifact(tiny_model, tmp_path / "a", parents=["p"], metrics={"loss": 1.0},
                      metadata={"vocab": 16})
    assert m["params"] == sum(p.numel() for p in tiny_model.parameters())
    assert "model.safetensors" in m["files"] and "config.json" in m["files"]
    assert m["bytes"] == sum((tmp_path / "a" / f).stat().st_size for f in m["files"])
    assert verify_artifact(tmp_path / "a", m["digest"])["parents"] == ["p"]
    again = save_artifact(tiny_model, tmp_path / "b")
    assert again["digest"] == m["digest"]  # deterministic: same weights, same digest


def test_verify_catches_corruption_and_loss(tmp_path, tiny_model):
    m = save_artifact(tiny_model, tmp_path / "a")
    weights = tmp_path / "a" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match its sha256"):
        verify_artifact(tmp_path / "a")
    weights.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        verify_artifact(tmp_path / "a")
    (tmp_path / "a" / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        verify_artifact(tmp_path / "a")
    with pytest.raises(ArtifactError, match="no manifest"):
        verify_artifact(tmp_path / "nothing")
    save_artifact(tiny_model, tmp_path / "c")
    with pytest.raises(ArtifactError, match="differs from the registry"):
        verify_artifact(tmp_path / "c", "0" * 64)


def test_contract_reports_every_problem():
    c = HandoffContract(3, 3, min_params=10, max_params=100, required_metadata=("spec",))
    refs = [ModelRef("a", "/a", "d", 5, {}), ModelRef("b", "/b", "d", 50, {"spec": 1})]
    problems = c.problems(refs)
    assert len(problems) == 3
    with pytest.raises(HandoffError, match="expected 3..3 models, got 2"):
        c.check(refs, "cognate output")
    assert c.problems([ModelRef(x, "/", "d", 50, {"spec": 1}) for x in "abc"]) == []


def test_select_phases():
    plan = ["a", "b", "c", "d"]
    assert select_phases(plan, None) == plan
    assert select_phases(plan, "b..c") == ["b", "c"]
    assert select_phases(plan, "c..") == ["c", "d"]
    assert select_phases(plan, "d,a") == ["a", "d"]
    for bad in ("z", "d..a", "a..z"):
        with pytest.raises(ConfigError, match="--phases"):
            select_phases(plan, bad)


def test_skip_decision():
    inputs = [ModelRef("m", "/m", "d1", 1)]
    row = {"status": "done", "attempt": 2,
           "summary": json.dumps({"inputs": [{"id": "m", "digest": "d1"}],
                                  "outputs": [{"id": "o", "path": "x", "digest": "d2"}]})}
    assert skip_decision(row, inputs, lambda out: None)[0] is True
    assert skip_decision(None, inputs, lambda out: None) == (False, "never ran")
    assert skip_decision({**row, "status": "failed"}, inputs, lambda o: None)[0] is False
    changed = [ModelRef("m", "/m", "other", 1)]
    assert skip_decision(row, changed, lambda o: None) == (False, "its input models changed")
    assert skip_decision(row, inputs, lambda o: "corrupt") == (False, "corrupt")
