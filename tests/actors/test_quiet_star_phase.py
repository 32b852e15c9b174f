"""Phase 3 (Quiet-STaR) through the driver on Ray: `--input` a tiny Cognate, get the thinking
model registered with lineage and the (a)/(b)/(c) numbers, or the input handed on unchanged."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from forge.config import load
from forge.models import CognateForCausalLM
from forge.phases.cognate import build_seed_model
from forge.phases.common import prepare_data
from forge.pipeline.artifacts import save_artifact, verify_artifact
from tests.actors.input_runs import only_run, submit_from
from tests.conftest import ROOT

pytestmark = [pytest.mark.ray, pytest.mark.slow]
TINY = str(ROOT / "tests" / "cognate_tiny.yaml")
SETTINGS = ("pipeline.phases=[quiet_star]", "phases.quiet_star.train.steps=2",
            "phases.quiet_star.train.batch_size=2", "phases.quiet_star.train.log_every=1",
            "phases.quiet_star.thoughts.length=2", "phases.quiet_star.eval.max_examples=2",
            "phases.quiet_star.eval.accuracy_examples=1", "phases.quiet_star.eval.max_new_tokens=2")


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny Cognate artifact with the vocabulary of the tokenizer the run will train."""
    root = tmp_path_factory.mktemp("quiet-star-input")
    cfg = load(TINY, [f"data.tokenizer_cache={root / 'tok'}"])
    data = prepare_data(cfg, root / "scratch")
    save_artifact(build_seed_model(cfg, len(data.tokenizer), 0), root / "champion",
                  metadata={"vocab_size": len(data.tokenizer)})
    return root / "champion", root / "tok"


def run(runs_dir: Path, artifact, *sets: str) -> int:
    return submit_from(TINY, runs_dir, artifact, *SETTINGS, *sets)



def test_thinker_is_registered_with_its_numbers_or_the_input_goes_on(ray_session, runs_dir,
                                                                     tiny_artifact):
    assert run(runs_dir, tiny_artifact) == 0
    store, run_id = only_run(runs_dir)
    phase = store.latest_phases(run_id)["quiet_star"]
    summary = json.loads(phase["summary"])
    modes = summary["details"]["modes"]
    a, b, c = (modes[m]["bits_per_byte"] for m in ("think", "off", "random"))
    assert summary["adopted"] == (a < b - 0.01 and a < c - 0.01)  # the default margin
    assert phase["status"] == ("done" if summary["adopted"] else "not_adopted")
    assert f"(b) thoughts off {b:.4f}" in summary["reason"]
    metrics = {m["name"]: m["value"] for m in store.metrics(run_id, phase="quiet_star")}
    assert metrics["eval/think/bits_per_byte"] == a and metrics["eval/off/bits_per_byte"] == b
    assert [m["step"] for m in store.metrics(run_id, name="loss/total")] == [1, 2]
    (source,) = store.list_models(run_id, phase="inputs")
    if summary["adopted"]:
        (model,) = store.list_models(run_id, phase="quiet_star")
        assert store.parents(model["id"]) == [{"parent": source["id"], "method": "quiet_star"}]
        verify_artifact(runs_dir / model["path"], model["sha256"])
        thinker = CognateForCausalLM.from_pretrained(runs_dir / model["path"])
        assert thinker.config.thought_len == 2
    else:
        assert summary["outputs"] == summary["inputs"]  # the input is handed on unchanged


def test_gate_that_cannot_pass_falls_back_or_stops(ray_session, tmp_path, tiny_artifact, capsys):
    assert run(tmp_path / "a", tiny_artifact, "phases.quiet_star.gate.margin=100") == 0
    store, run_id = only_run(tmp_path / "a")
    phase = store.latest_phases(run_id)["quiet_star"]
    summary = json.loads(phase["summary"])
    assert phase["status"] == "not_adopted" and summary["outputs"] == summary["inputs"]
    assert summary["reason"].startswith("not adopted: validation answer bits/byte (a) thinking")
    assert run(tmp_path / "b", tiny_artifact, "phases.quiet_star.gate.margin=100",
               "phases.quiet_star.gate.on_fail=fail") == 1
    err = capsys.readouterr().err
    assert "phase quiet_star failed: gate failed: not adopted: validation answer bits/byte" in err
    store, run_id = only_run(tmp_path / "b")
    assert store.latest_phases(run_id)["quiet_star"]["status"] == "failed"
    assert store.list_models(run_id, phase="quiet_star") == []
