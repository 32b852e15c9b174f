"""Phase 4 (BitNet) through the driver on Ray: `--input` a tiny fp Cognate, get a registered packed
ternary model with lineage and metrics; a failing gate falls back or stops the run with numbers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from forge.config import load
from forge.phases.cognate import build_seed_model
from forge.phases.common import prepare_data
from forge.pipeline.artifacts import save_artifact, verify_artifact
from forge import load_model
from forge.quant import ternary_layers
from tests.actors.input_runs import only_run, submit_from
from tests.conftest import ROOT

pytestmark = [pytest.mark.ray, pytest.mark.slow]
TINY = str(ROOT / "tests" / "bitnet_tiny.yaml")
WRECK = ("phases.bitnet.train.steps=2", "phases.bitnet.train.warmup=0", "optim.bitnet.lr=0.3",
         "phases.bitnet.train.divergence_factor=1000", "phases.bitnet.gate.margin=0.0")


@pytest.fixture(scope="module")
def fp_artifact(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny fp Cognate artifact with the vocabulary of the tokenizer a bitnet run will train."""
    root = tmp_path_factory.mktemp("bitnet-input")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = load(TINY, [f"data.tokenizer_cache={root / 'tok'}"])
    data = prepare_data(cfg, root / "scratch")
    model = build_seed_model(cfg, len(data.tokenizer), 0)
    save_artifact(model.eval(), root / "fp", metadata={"vocab_size": len(data.tokenizer)})
    torch.set_num_threads(threads)
    return root / "fp", root / "tok"


def run(runs_dir: Path, fp_artifact, *sets: str) -> int:
    return submit_from(TINY, runs_dir, fp_artifact, *sets)



def test_input_model_becomes_a_registered_packed_ternary_model(ray_session, runs_dir, fp_artifact):
    assert run(runs_dir, fp_artifact) == 0
    store, run_id = only_run(runs_dir)
    phase = store.latest_phases(run_id)["bitnet"]
    assert phase["status"] == "done"
    summary = json.loads(phase["summary"])
    details = summary["details"]
    assert summary["adopted"] and details["gate"]["adopted"]
    assert details["gate"]["ratio"] <= 1.10 and details["reload_logits_equal"]
    (model,) = store.list_models(run_id, phase="bitnet")
    (source,) = store.list_models(run_id, phase="inputs")
    assert store.parents(model["id"]) == [{"parent": source["id"], "method": "bitnet:ste"}]
    meta = json.loads(model["metadata"])
    assert meta["quantization"] == "bitnet-b1.58" and meta["loader"] == "forge.load_model"
    path = runs_dir / model["path"]
    verify_artifact(path, model["sha256"])
    loaded = load_model(path)
    assert len(ternary_layers(loaded)) == 12
    metrics = {(m["model"], m["name"]): m["value"] for m in store.metrics(run_id, phase="bitnet")}
    for stage in ("fp", "ternary_ptq", "ternary"):
        assert metrics[(stage, "text/bits_per_byte")] > 0
    assert metrics[("ternary", "size/linear_bits_per_weight")] <= 1.62
    assert [m["step"] for m in store.metrics(run_id, name="loss")] == [2, 4, 6, 8]


def test_failing_gate_falls_back_or_stops_with_its_numbers(ray_session, tmp_path, fp_artifact,
                                                           capsys):
    assert run(tmp_path / "a", fp_artifact, *WRECK) == 0
    store, run_id = only_run(tmp_path / "a")
    phase = store.latest_phases(run_id)["bitnet"]
    summary = json.loads(phase["summary"])
    assert phase["status"] == "not_adopted" and not summary["adopted"]
    assert summary["reason"].startswith("validation bits/byte: ternary after STE ")
    assert summary["outputs"] == summary["inputs"]  # the fp input is handed on unchanged
    gate = summary["details"]["gate"]
    assert gate["ternary_bits_per_byte"] > gate["fp_bits_per_byte"]

    assert run(tmp_path / "b", fp_artifact, *WRECK, "phases.bitnet.gate.on_fail=fail") == 1
    err = capsys.readouterr().err
    assert "phase bitnet failed: gate failed: validation bits/byte" in err
    assert "right after quantisation" in err and "resume with: forge resume" in err
    store, run_id = only_run(tmp_path / "b")
    assert store.latest_phases(run_id)["bitnet"]["status"] == "failed"
    assert store.list_models(run_id, phase="bitnet") == []
