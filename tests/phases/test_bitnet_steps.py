"""Phase 4 (BitNet) pure steps on a tiny Cognate: the phase end to end without Ray, the gate
passing and failing with its numbers, exact resume of STE fine-tuning, refused bad input."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from forge.config import ConfigError, load
from forge.data.batching import encode_documents, lm_windows
from forge.data.tokenizer import save_tokenizer, train_tokenizer
from forge.phases.bitnet import (OUTPUT_NAME, calibration_batches, fine_tune,
                                 fingerprint, gate, load_input, run_bitnet, sync_tokenizer)
from forge.phases.bitnet_report import phase_record, write_report
from forge.phases.cognate import build_seed_model
from forge.phases.common import prepare_data
from forge.pipeline.artifacts import ModelRef, read_manifest, save_artifact, verify_artifact
from forge.pipeline.phase import PhaseContext
from forge import load_model
from forge.quant import convert_to_ternary, save_ternary, ternary_layers
from forge.training.checkpoint import PREFIX
from tests.conftest import ROOT

TINY = ROOT / "tests" / "bitnet_tiny.yaml"


class Recorder:
    """Collects what the phase logs: (model, step, name) -> value."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int, str], float] = {}

    def log_metrics(self, run_id, phase, step, values, model=""):
        self.rows.update({(model, step, k): v for k, v in values.items()})

    def progress(self, phase, done, total, note=""):
        pass

    def steps(self, model: str, name: str) -> list[int]:
        return sorted(s for m, s, n in self.rows if m == model and n == name)


def tiny_config(tmp: Path, *sets: str):
    return load(TINY, [f"data.tokenizer_cache={tmp / 'tok'}", *sets])


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, ModelRef]:
    """A run dir with its tokenizer and a tiny Cognate trained 25 steps: the fp input model."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module scope runs before the one_thread fixture
    root = tmp_path_factory.mktemp("bitnet")
    cfg = tiny_config(root)
    run_dir = root / "run"
    data = prepare_data(cfg, run_dir)
    model = build_seed_model(cfg, len(data.tokenizer), 0)
    windows = lm_windows(encode_documents(data.tokenizer, data.corpus.train), cfg.data.seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(25):
        ids = windows[torch.arange(step * 8, step * 8 + 8) % len(windows)]
        loss = model(ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = run_dir / "cognate" / "reasoning"
    manifest = save_artifact(model.eval(), path, metadata={"vocab_size": len(data.tokenizer),
                                                           "specialisation": "reasoning"})
    ref = ModelRef("r/cognate/reasoning", str(path), manifest["digest"], manifest["params"],
                   manifest["metadata"])
    torch.set_num_threads(threads)
    return run_dir, ref


def context(run_dir: Path, out: Path, cfg) -> tuple[PhaseContext, Recorder]:
    rec = Recorder()
    return PhaseContext("r", "bitnet", 1, run_dir, out, cfg, rec), rec


def test_phase_quantises_fine_tunes_and_writes_a_loadable_packed_artifact(run, tmp_path):
    run_dir, ref = run
    cfg = tiny_config(run_dir.parent)
    ctx, rec = context(run_dir, tmp_path / "out", cfg)
    result = run_bitnet(ref, ctx)
    s = result.summary
    assert result.adopted and "<=" in result.reason
    assert [o.name for o in result.outputs] == [OUTPUT_NAME]
    assert result.outputs[0].parents == [(ref.id, "bitnet:ste")]
    for stage in ("fp", "ternary_ptq", "ternary_ste"):
        bpb = s[stage]["text/bits_per_byte"]
        assert math.isfinite(bpb) and 0 < bpb < 20, stage
        assert 0 <= s[stage]["tasks/exact_match"] <= 1 and s[stage]["tasks/n"] == 10
    assert s["gate"]["ratio"] == pytest.approx(
        s["ternary_ste"]["text/bits_per_byte"] / s["fp"]["text/bits_per_byte"])
    assert s["gate"]["ratio"] <= 1.10  # the default margin
    assert s["ternary_ste"]["text/bits_per_byte"] != s["ternary_ptq"]["text/bits_per_byte"]
    assert len(s["ternary_layers"]) == 12 and set(s["calibration"]) == set(s["ternary_layers"])
    assert s["reload_logits_equal"] is True
    assert 1.6 <= s["size"]["linear_bits_per_weight"] <= 1.62
    assert s["size"]["ratio_fp32"] > 1.5
    # metrics: fp, right after quantisation, the training loss rows, after STE
    assert rec.rows[("fp", 0, "text/bits_per_byte")] == s["fp"]["text/bits_per_byte"]
    assert ("fp", 0, "calib/out_rel_error_mean") in rec.rows
    assert rec.rows[("ternary_ptq", 0, "text/bits_per_byte")] == s["ternary_ptq"]["text/bits_per_byte"]
    assert rec.steps(OUTPUT_NAME, "loss") == [2, 4, 6, 8]
    assert rec.rows[(OUTPUT_NAME, 8, "text/bits_per_byte")] == s["ternary_ste"]["text/bits_per_byte"]
    assert rec.rows[(OUTPUT_NAME, 8, "size/linear_bits_per_weight")] <= 1.62
    # the artifact: verifies, says it is ternary and how to load it, reloads to a runnable model
    out = ctx.artifact_dir(OUTPUT_NAME)
    manifest = verify_artifact(out)
    meta = manifest["metadata"]
    assert meta["quantization"] == "bitnet-b1.58" and meta["loader"] == "forge.load_model"
    assert meta["vocab_size"] == 320 and meta["specialisation"] == "reasoning"
    assert manifest["parents"] == [ref.id]
    assert manifest["metrics"]["text/bits_per_byte"] == s["ternary_ste"]["text/bits_per_byte"]
    loaded = load_model(out)
    assert len(ternary_layers(loaded)) == 12
    assert all(layer.frozen for layer in ternary_layers(loaded).values())
    assert loaded.model.embed_tokens.weight.dtype == torch.float32  # fp16 on disk, fp32 in use
    # the report page carries the same numbers
    page = write_report({"run": "r", "status": "done", "summary": {"details": s}, "config": ""},
                        tmp_path / "docs", {"cpus": 2})
    text = page.read_text()
    for stage in ("fp", "ternary_ptq", "ternary_ste"):
        assert f"| {s[stage]['text/bits_per_byte']:.4f} |" in text
    assert f"| {s['size']['linear_bits_per_weight']:.4f} |" in text and result.reason in text
    assert json.loads((tmp_path / "docs" / "bitnet_phase.json").read_text())["machine"] == {"cpus": 2}
    checkpoints = run_dir / "checkpoints" / "bitnet" / OUTPUT_NAME
    assert sorted(p.name for p in checkpoints.glob(f"{PREFIX}*")) == ["step-0000004",
                                                                      "step-0000008"]


def test_failing_gate_hands_on_and_reports_its_numbers(run, tmp_path):
    run_dir, ref = run
    # lr 0.3 wrecks the latent weights in 3 steps: the ternary model is far worse than the input
    cfg = tiny_config(run_dir.parent, "phases.bitnet.train.steps=3", "phases.bitnet.train.warmup=0",
                      "optim.bitnet.lr=0.3", "phases.bitnet.train.divergence_factor=1000",
                      "phases.bitnet.gate.margin=0.0", f"run.runs_dir={tmp_path}")
    ctx, rec = context(tmp_path / "run", tmp_path / "out", cfg)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "tokenizer.json").write_bytes((run_dir / "tokenizer.json").read_bytes())
    result = run_bitnet(ref, ctx)
    fp, ste = result.summary["gate"]["fp_bits_per_byte"], result.summary["gate"]["ternary_bits_per_byte"]
    assert not result.adopted and ste > fp
    ptq = result.summary["ternary_ptq"]["text/bits_per_byte"]
    assert result.reason == (f"validation bits/byte: ternary after STE {ste:.4f} > {fp:.4f} = "
                             f"fp {fp:.4f} x (1 + margin 0); right after quantisation {ptq:.4f}")
    assert result.key_metric == ("val_bits_per_byte", ste)
    assert rec.rows[(OUTPUT_NAME, 3, "text/bits_per_byte")] == ste


def test_gate_rule():
    assert gate(2.0, 2.2, 0.1)[0] and not gate(2.0, 2.21, 0.1)[0]
    assert gate(2.0, 1.5, 0.0)[0]
    assert not gate(2.0, float("nan"), 0.5)[0]
    assert gate(2.0, 2.3, 0.1)[1] == ("validation bits/byte: ternary after STE 2.3000 > 2.2000 = "
                                      "fp 2.0000 x (1 + margin 0.1)")


def test_ste_fine_tuning_resumes_exactly_from_a_checkpoint(run, tmp_path):
    run_dir, ref = run
    cfg = tiny_config(run_dir.parent, "phases.bitnet.train.steps=4",
                      "phases.bitnet.train.checkpoint_every=2")
    data = prepare_data(cfg, run_dir)

    def train(ckpt: Path):
        model = load_input(ref, len(data.tokenizer))
        convert_to_ternary(model)
        losses = {}
        outcome, _ = fine_tune(model, data, cfg, ckpt, fingerprint(ref, cfg),
                               lambda step, v: losses.__setitem__(step, v["loss"]), lambda d, t: None)
        return model, outcome, losses

    straight, _, losses = train(tmp_path / "a")
    _, _, _ = train(tmp_path / "b")
    # a crash after step 2: only the step-2 checkpoint survives, the rerun resumes from it
    import shutil
    shutil.rmtree(tmp_path / "b" / "step-0000004")
    resumed, outcome, resumed_losses = train(tmp_path / "b")
    assert outcome.resumed_from == 2 and resumed_losses[4] == losses[4]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


# --- bad input ----------------------------------------------------------------------------------

def test_a_ternary_input_is_refused(run, tmp_path):
    run_dir, ref = run
    model = load_model(ref.path)
    convert_to_ternary(model)
    save_ternary(model, tmp_path / "q")
    manifest = read_manifest(tmp_path / "q")
    q_ref = ModelRef("x/bitnet/ternary", str(tmp_path / "q"), manifest["digest"], 1, {})
    with pytest.raises(ValueError, match="x/bitnet/ternary: already a packed ternary artifact"):
        load_input(q_ref, 320)


def test_a_model_with_a_smaller_vocabulary_is_refused(run):
    _, ref = run
    with pytest.raises(ValueError, match=r"vocabulary 320 < the run tokenizer's 2048"):
        load_input(ref, 2048)


@pytest.mark.parametrize("setting, key", [
    ("phases.bitnet.dtype=int8", "phases.bitnet.dtype"),
    ("phases.bitnet.keep=['']", "phases.bitnet.keep"),
    ("phases.bitnet.gate.margin=-0.1", "phases.bitnet.gate.margin"),
    ("phases.bitnet.act_bits=1", "phases.bitnet.act_bits"),
    ("phases.bitnet.train.steps=0", "phases.bitnet.train.steps"),
    ("phases.bitnet.text_fraction=1.5", "phases.bitnet.text_fraction"),
    ("phases.bitnet.gate.on_fail=maybe", "phases.bitnet.gate.on_fail"),
])
def test_bad_settings_name_the_key(tmp_path, setting, key):
    with pytest.raises(ConfigError, match=key):
        tiny_config(tmp_path, setting)


def test_calibration_batches_are_validation_windows(run):
    run_dir, _ = run
    cfg = tiny_config(run_dir.parent)
    data = prepare_data(cfg, run_dir)
    batches = calibration_batches(data, cfg, 2)
    assert batches and all(b.dim() == 2 and b.shape[0] <= cfg.data.eval.batch_size for b in batches)
    ids = encode_documents(data.tokenizer, data.corpus.validation[:2])
    assert torch.equal(batches[0][0], torch.tensor(ids[:batches[0].shape[1]]))
    assert json.loads((run_dir / "tokenizer.json").read_text())  # the run's own tokenizer


def _staged(run_dir: Path, ref: ModelRef, new_run: Path) -> ModelRef:
    """`ref` copied into `new_run/inputs/0-reasoning` as `pipeline.inputs` stages it."""
    import shutil

    copy = new_run / "inputs" / "0-reasoning"
    shutil.copytree(ref.path, copy)
    (copy.parent / "inputs.json").write_text(json.dumps([{"name": "0-reasoning",
                                                          "path": ref.path}]))
    return ModelRef("n/inputs/0-reasoning", str(copy), ref.digest, ref.params, ref.metadata)


def test_a_model_from_another_run_brings_its_tokenizer(run, tmp_path):
    run_dir, ref = run
    staged = _staged(run_dir, ref, tmp_path / "new")
    assert sync_tokenizer(staged, tmp_path / "new") == str(run_dir / "tokenizer.json")
    assert (tmp_path / "new" / "tokenizer.json").read_bytes() == (run_dir / "tokenizer.json").read_bytes()
    assert sync_tokenizer(staged, tmp_path / "new") == "run"  # now the run's own, the same
    assert sync_tokenizer(ref, tmp_path / "elsewhere") == "trained"  # nothing to find


def test_a_run_whose_tokenizer_differs_from_the_inputs_is_refused(run, tmp_path):
    run_dir, ref = run
    staged = _staged(run_dir, ref, tmp_path / "new")
    other = train_tokenizer(["a completely different corpus " * 50, "with other words " * 40],
                            320, tmp_path / "tok")
    save_tokenizer(other, tmp_path / "new")
    with pytest.raises(ValueError, match=r"n/inputs/0-reasoning: trained with the tokenizer "
                                         r".*tokenizer\.json, which differs from this run's"):
        sync_tokenizer(staged, tmp_path / "new")


def test_report_of_a_missing_run_is_refused(tmp_path):
    with pytest.raises(ValueError, match="registry.db: no registry"):
        phase_record(tmp_path, "nope")
