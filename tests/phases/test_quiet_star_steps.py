"""Phase 3 (Quiet-STaR) without Ray: the phase on a tiny model artifact, its gate, its bad inputs."""
from __future__ import annotations

import pytest
import torch

from forge.config import load
from forge.eval.evaluate import per_task_sample
from forge.models import CognateForCausalLM
from forge.phases.cognate import build_seed_model
from forge.phases.common import prepare_data
from forge.phases.quiet_star import (OUTPUT, QuietStarBatches, QuietStarPhase,
                                     build_thinking_model, gate_decision, thought_token_ids)
from forge.pipeline import ModelRef, PhaseContext, save_artifact
from forge.pipeline.artifacts import verify_artifact
from forge.reasoning.scoring import answer_bits
from tests.conftest import ROOT

TINY = ROOT / "tests" / "cognate_tiny.yaml"
PHASE_SETTINGS = ["phases.quiet_star.train.steps=4", "phases.quiet_star.train.batch_size=2",
                  "phases.quiet_star.train.log_every=2", "phases.quiet_star.thoughts.length=2",
                  "phases.quiet_star.eval.max_examples=2",
                  "phases.quiet_star.eval.accuracy_examples=1",
                  "phases.quiet_star.eval.max_new_tokens=2",
                  "phases.quiet_star.train.task_weights={chain_sum: 1.0}"]


class Rows:
    """A recorder that keeps metric rows and progress calls in lists."""

    def __init__(self):
        self.metrics, self.progress_calls = [], []

    def log_metrics(self, run_id, phase, step, values, model=""):
        self.metrics.append((step, model, dict(values)))

    def progress(self, phase, done, total, note=""):
        self.progress_calls.append((done, total))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = load(TINY, [f"data.tokenizer_cache={tmp_path_factory.mktemp('tok')}", *PHASE_SETTINGS])
    run_dir = tmp_path_factory.mktemp("run")
    data = prepare_data(cfg, run_dir)
    model = build_seed_model(cfg, len(data.tokenizer), seed=0)
    manifest = save_artifact(model, run_dir / "input", metadata={"vocab_size": len(data.tokenizer)})
    ref = ModelRef("r/evomerge/champion", str(run_dir / "input"), manifest["digest"],
                   manifest["params"], manifest["metadata"])
    return cfg, data, run_dir, ref


def context(cfg, run_dir, rows, name="out"):
    return PhaseContext("r", "quiet_star", 1, run_dir, run_dir / name, cfg, rows)


def test_phase_trains_reports_three_numbers_and_saves_a_reloadable_thinker(tiny):
    cfg, data, run_dir, ref = tiny
    rows = Rows()
    result = QuietStarPhase().run([ref], context(cfg, run_dir, rows))
    modes = result.summary["modes"]
    assert set(modes) == {"think", "off", "random"}
    a, b, c = (modes[m]["bits_per_byte"] for m in ("think", "off", "random"))
    # (a) and (c) may agree to float precision: at this size a thought's content moves the
    # end-of-thought state very little (docs/phases/quiet_star.md); (a) vs (b) always differ.
    assert all(0 < v < 100 for v in (a, b, c)) and a != b
    assert result.adopted == (a < b - 0.01 and a < c - 0.01)  # the default margin
    assert modes["think"]["gain_vs_off"] == pytest.approx(b - a, abs=1e-6)
    assert modes["think"]["gain_vs_random"] == pytest.approx(c - a, abs=1e-6)
    assert modes["think"]["gain_vs_random_se"] > 0
    assert f"(a) thinking {a:.4f}" in result.reason and f"(c) random thoughts {c:.4f}" in result.reason
    logged = {k: v for _, _, m in rows.metrics for k, v in m.items()}
    assert logged["eval/think/bits_per_byte"] == a and logged["eval/random/bits_per_byte"] == c
    assert [s for s, _, m in rows.metrics if "loss/total" in m] == [2, 4]
    assert rows.progress_calls[-1] == (4, 4)
    assert 0 < modes["think"]["mix_w"] < 1 and modes["off"]["mix_w"] == 0
    # the artifact: verified, reloads with its head and settings, and is still a plain causal LM
    path = run_dir / "out" / OUTPUT
    manifest = verify_artifact(path)
    assert manifest["parents"] == [ref.id] and manifest["metadata"]["thought_len"] == 2
    thinker = CognateForCausalLM.from_pretrained(path).eval()
    assert thinker.config.thought_len == 2 and thinker.thoughts is not None
    assert thinker.config.thought_start_id == data.tokenizer.convert_tokens_to_ids(
        "<|startofthought|>")
    examples = per_task_sample(data.tasks.validation, 2)  # what the phase scored
    off = answer_bits(thinker, data.tokenizer, examples, "off")  # the plain causal-LM path
    assert off["bits_per_byte"] == pytest.approx(b, rel=1e-5)
    ids = torch.tensor([[10, 11, 12]])
    assert thinker(ids).logits.shape == (1, 3, len(data.tokenizer))


def test_gate_needs_both_controls_beaten_by_the_margin():
    modes = {"think": {"bits_per_byte": 1.0}, "off": {"bits_per_byte": 1.2},
             "random": {"bits_per_byte": 1.05}}
    assert gate_decision(modes, 0.0)[0]
    adopted, reason = gate_decision(modes, 0.1)  # beats off by 0.2, random by only 0.05
    assert not adopted and reason.startswith("not adopted") and "(c) random thoughts 1.0500" in reason
    modes["random"]["bits_per_byte"] = 0.9
    assert not gate_decision(modes, 0.0)[0]


def test_the_phase_returns_its_verdict_and_leaves_on_fail_to_the_driver(tiny):
    cfg, _, run_dir, ref = tiny
    cfg = load(TINY, [f"data.tokenizer_cache={run_dir / 'tok'}", *PHASE_SETTINGS,
                      "phases.quiet_star.train.steps=1", "phases.quiet_star.gate.margin=50",
                      "phases.quiet_star.gate.on_fail=fail"])
    result = QuietStarPhase().run([ref], context(cfg, run_dir, Rows(), "fail"))
    assert not result.adopted and result.reason.startswith("not adopted: validation answer")


def test_bad_inputs_name_what_is_wrong(tiny):
    cfg, data, _, _ = tiny
    s = cfg.phase("quiet_star")
    with pytest.raises(ValueError, match=r"is \d+ tokens in this vocabulary"):
        thought_token_ids(data.tokenizer, "zqxj")
    other = build_seed_model(cfg, len(data.tokenizer) + 5, seed=0)
    with pytest.raises(ValueError, match="model vocabulary .* != tokenizer's"):
        build_thinking_model(other, data.tokenizer, s)
    bad = load(TINY, [f"data.tokenizer_cache={cfg.data.tokenizer_cache}",
                      "phases.quiet_star.train.task_weights={sudoku: 1.0}"])
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['sudoku'\]"):
        QuietStarBatches(data, bad, bad.phase("quiet_star"), 0)


def test_batches_are_answer_masked_and_a_pure_function_of_the_step(tiny):
    cfg, data, _, _ = tiny
    s = cfg.phase("quiet_star")
    a, b = QuietStarBatches(data, cfg, s, 0), QuietStarBatches(data, cfg, s, 0)
    assert torch.equal(a(3)["input_ids"], b(3)["input_ids"])
    labels = a(3)["labels"]
    assert (labels == -100).any() and (labels != -100).any()


def test_chain_sum_preset_loads_and_plans_phase_1_then_3():
    cfg = load(ROOT / "config" / "presets" / "quiet-star-chain-sum.yaml")
    assert cfg.pipeline.phases == ("cognate", "quiet_star")
    assert [t.name for t in cfg.data.tasks] == ["chain_sum"]
    assert cfg.data.tasks[0].config["min_terms"] == 3
    assert len(cfg.phase("cognate").specialisations) == 1  # one model in, as Phase 3 expects
    s = cfg.phase("quiet_star")
    assert (s.thoughts.length, s.thoughts.per_position, s.gate.on_fail) == (4, 2, "fallback")


def test_an_interrupted_training_resumes_exactly_from_its_checkpoint(tiny, tmp_path):
    """A phase restarted on another node resumes from its last checkpoint: the weights end up
    equal to an uninterrupted run's (weights, optimizer, thought sampler and RNG are saved)."""
    import dataclasses

    from forge.phases.quiet_star import train_thinking
    from forge.training.checkpoint import CheckpointPlan

    cfg, data, run_dir, ref = tiny
    s = cfg.phase("quiet_star")
    s = dataclasses.replace(s, train=dataclasses.replace(s.train, checkpoint_every=2))  # 4 steps
    batches = QuietStarBatches(data, cfg, s, 0)

    def fresh():
        torch.manual_seed(0)
        return build_thinking_model(CognateForCausalLM.from_pretrained(ref.path), data.tokenizer, s)

    def lost_at_step_3(step):
        if step == 3:
            raise RuntimeError("node lost")
        return batches(step)

    whole = fresh()
    assert train_thinking(whole, None, batches, s, cfg, 0,
                          checkpoints=CheckpointPlan(tmp_path / "a", "fp", 2)).resumed_from == 0
    with pytest.raises(RuntimeError, match="node lost"):
        train_thinking(fresh(), None, lost_at_step_3, s, cfg, 0,
                       checkpoints=CheckpointPlan(tmp_path / "b", "fp", 2))
    resumed = fresh()
    outcome = train_thinking(resumed, None, batches, s, cfg, 0,
                             checkpoints=CheckpointPlan(tmp_path / "b", "fp", 2))
    assert outcome.resumed_from == 2 and outcome.steps == 4
    after = resumed.state_dict()
    for name, value in whole.state_dict().items():
        assert torch.equal(value, after[name]), name
    other = train_thinking(fresh(), None, batches, s, cfg, 0,  # other settings: never reused
                           checkpoints=CheckpointPlan(tmp_path / "b", "other", 2))
    assert other.resumed_from == 0
