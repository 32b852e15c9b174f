"""Phase 1's pure steps: specialist batches, task mixes, specialisation, diversity check."""
import pytest
import torch

from forge.config import load
from forge.phases.cognate import (SpecialistBatches, build_seed_model, check_context,
                                  check_diversity, context_metrics, specialise, task_weights_for)
from forge.phases.cognate_config import Specialisation
from forge.phases.common import prepare_data
from tests.conftest import ROOT

TINY = ROOT / "tests" / "cognate_tiny.yaml"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = load(TINY, [f"data.tokenizer_cache={tmp_path_factory.mktemp('tok')}"])
    run_dir = tmp_path_factory.mktemp("run")
    return cfg, prepare_data(cfg, run_dir), run_dir


def test_tokenizer_is_saved_once_per_run(tiny):
    cfg, data, run_dir = tiny
    assert (run_dir / "tokenizer.json").is_file()
    again = prepare_data(cfg, run_dir)
    assert again.tokenizer.get_vocab() == data.tokenizer.get_vocab()


def test_batches_are_a_pure_function_of_seed_and_step(tiny):
    cfg, data, _ = tiny
    spec = Specialisation("a", data_seed=1, text_fraction=0.5)
    weights = task_weights_for(spec, cfg)
    a = SpecialistBatches(data, spec, 4, 32, weights)
    b = SpecialistBatches(data, spec, 4, 32, weights)
    for step in (0, 1, 7):
        assert all(torch.equal(a(step)[k], b(step)[k]) for k in a(step))
    other = SpecialistBatches(data, Specialisation("b", data_seed=2), 4, 32, weights)
    assert [a(s)["input_ids"].tolist() for s in range(6)] != \
        [other(s)["input_ids"].tolist() for s in range(6)]
    kinds = {"attention_mask" in a(s) for s in range(40)}
    assert kinds == {True, False}  # both text and task batches occur at text_fraction 0.5
    task_batch = next(a(s) for s in range(40) if "attention_mask" in a(s))
    assert (task_batch["labels"] == -100).any() and (task_batch["labels"] != -100).any()


def test_task_mix_only_names_known_tasks(tiny):
    cfg, _, _ = tiny
    assert task_weights_for(Specialisation("a", task_weights={"chain_sum": 3.0}), cfg) == {"chain_sum": 3.0}
    assert set(task_weights_for(Specialisation("a"), cfg)) == {t.name for t in cfg.data.tasks}
    with pytest.raises(ValueError, match="unknown task 'sudoku'"):
        task_weights_for(Specialisation("a", task_weights={"sudoku": 1.0}), cfg)


def test_specialise_changes_settings_not_shapes(tiny):
    cfg, data, _ = tiny
    model = build_seed_model(cfg, len(data.tokenizer), seed=0)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    specialise(model, Specialisation("a", act_threshold=0.8, memory_chunk=4, window=8))
    assert (model.config.act_threshold, model.config.memory_chunk, model.config.window) == (0.8, 4, 8)
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes
    same = build_seed_model(cfg, len(data.tokenizer), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values()))


def test_diversity_check():
    seed = {"w": torch.zeros(4)}
    models = {"a": {"w": torch.tensor([1.0, 0, 0, 0])}, "b": {"w": torch.tensor([0, 1.0, 0, 0])},
              "c": {"w": torch.tensor([2.0, 0, 0, 0])}}
    with pytest.raises(ValueError, match="models a and c are too alike"):
        check_diversity(models, seed, floor=0.01)
    rows = check_diversity({k: models[k] for k in "ab"}, seed, floor=0.01)
    assert rows == {"diversity/a~b": pytest.approx(1.0)}


def test_context_metrics_and_check(tiny):
    cfg, data, _ = tiny
    model = build_seed_model(cfg, len(data.tokenizer), seed=0).eval()
    m = context_metrics(model, data, per_task=4)
    assert m["context/prompt_swap_n"] >= 2 and m["context/prompt_swap_stderr"] >= 0
    assert abs(m["context/prompt_swap_gain"]) < 0.5  # untrained: its prompt barely matters
    assert 0.0 < m["context/attention_entropy/block0"] <= 1.0
    reads = {"context/prompt_swap_gain": 0.31, "context/prompt_swap_stderr": 0.07}
    blind = {"context/prompt_swap_gain": 0.001, "context/prompt_swap_stderr": 0.002}
    check_context({"a": reads, "b": reads}, floor=0.02)
    check_context({"a": blind}, floor=None)  # null: measured and reported only
    with pytest.raises(ValueError, match=r"do not read their prompt: prompt-swap gain b \+0.0010 "
                                         r"\+- 0.0020 bits per answer byte < phases.cognate"):
        check_context({"a": reads, "b": blind}, floor=0.02)
    with pytest.raises(ValueError, match="no prompt-swap gain for a"):
        check_context({"a": {}}, floor=0.02)
