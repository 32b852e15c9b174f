"""Phase 1 on Ray at test size: three trainers at once, on logical GPU fractions, surviving a kill."""
import json
import threading
import time

import pytest
import ray

from forge import submit
from forge.registry import RegistryError, RegistryStore
from tests.conftest import ROOT

pytestmark = [pytest.mark.ray, pytest.mark.slow]
TINY = str(ROOT / "tests" / "cognate_tiny.yaml")
NAMES = ("reasoning", "memory", "adaptive")


def run_tiny(runs_dir, tmp_path, *sets: str) -> int:
    args = ["--config", TINY, "--runs-dir", str(runs_dir),
            "--set", f"data.tokenizer_cache={tmp_path / 'tok'}"]
    for s in sets:
        args += ["--set", s]
    return submit.main(args)


def only_run(runs_dir):
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    (run,) = store.list_runs()
    return store, run["id"]


def memory_steps(runs_dir) -> list[int]:
    """Logged loss steps of the 'memory' trainer; none while the registry is being created."""
    try:
        store = RegistryStore(runs_dir / "registry.db", readonly=True)
        runs = store.list_runs()
    except RegistryError:
        return []
    if not runs:
        return []
    return [m["step"] for m in store.metrics(runs[0]["id"], name="loss") if m["model"] == "memory"]


def test_three_trainers_overlap_beat_the_seed_and_differ(ray_session, runs_dir, tmp_path):
    assert ray.cluster_resources().get("GPU") == 1  # logical GPU: this machine has none
    assert run_tiny(runs_dir, tmp_path, "phases.cognate.train.steps=30") == 0
    store, run_id = only_run(runs_dir)
    metric = {(m["model"], m["name"]): m["value"] for m in store.metrics(run_id)}
    starts = [metric[(n, "trainer/started_at")] for n in NAMES]
    ends = [metric[(n, "trainer/ended_at")] for n in NAMES]
    assert max(starts) < min(ends)  # all three were training at the same time
    seed_bpb = metric[("seed", "text/bits_per_byte")]
    for name in NAMES:
        assert metric[(name, "text/bits_per_byte")] < seed_bpb
        losses = [m for m in store.metrics(run_id, name="loss") if m["model"] == name]
        assert [m["step"] for m in losses] == list(range(2, 31, 2))
    diversity = [v for (model, k), v in metric.items() if k.startswith("diversity/")]
    assert len(diversity) == 3 and min(diversity) > 0.01
    for name in NAMES:  # the context probes are logged for every specialist (check off here)
        assert metric[(name, "context/prompt_swap_n")] >= 2
        assert 0.0 < metric[(name, "context/attention_entropy/block0")] <= 1.0
    models = {m["name"]: m for m in store.list_models(run_id)}
    assert set(models) == {"seed", *NAMES}
    for name in NAMES:
        assert store.parents(models[name]["id"]) == [{"parent": models["seed"]["id"],
                                                      "method": f"train:{name}"}]
        meta = json.loads(models[name]["metadata"])
        assert meta["specialisation"] == name and meta["seed_model"] == models["seed"]["id"]
    summary = json.loads(store.latest_phases(run_id)["cognate"]["summary"])
    assert summary["details"]["trainer_resources"] == {"num_cpus": 0.66, "num_gpus": 0.33,
                                                       "device": "cpu"}
    assert len(summary["outputs"]) == 3  # the seed is registered but not handed on


def test_identical_specialists_fail_the_diversity_floor(ray_session, runs_dir, tmp_path, capsys):
    same = "act_threshold: 0.9, data_seed: 5, text_fraction: 0.5"
    specs = "[" + ", ".join(f"{{name: {n}, {same}}}" for n in "abc") + "]"
    code = run_tiny(runs_dir, tmp_path, f"phases.cognate.specialisations={specs}",
                    "phases.cognate.train.steps=4")
    assert code == 1
    err = capsys.readouterr().err
    assert "are too alike: pairwise weight diversity 0 < phases.cognate.diversity_floor" in err


def test_a_specialist_that_ignores_its_prompt_is_refused(ray_session, runs_dir, tmp_path, capsys):
    # Two steps cannot teach a model to read its prompt: a floor of 0.5 bits per answer byte
    # refuses all three, and nothing is handed on.
    code = run_tiny(runs_dir, tmp_path, "phases.cognate.min_prompt_swap_gain=0.5",
                    "phases.cognate.train.steps=2")
    assert code == 1
    err = capsys.readouterr().err
    assert "do not read their prompt: prompt-swap gain adaptive" in err
    assert "< phases.cognate.min_prompt_swap_gain 0.5" in err
    store, run_id = only_run(runs_dir)
    assert store.latest_phases(run_id)["cognate"]["status"] == "failed"


def test_handoff_contract_violation_names_the_problem(ray_session, runs_dir, tmp_path, capsys):
    code = run_tiny(runs_dir, tmp_path, "phases.cognate.max_params=1000", "phases.cognate.train.steps=2")
    assert code == 1
    err = capsys.readouterr().err
    assert "cognate output: model" in err and "parameters, outside 1..1000" in err


def test_killed_trainer_resumes_from_its_checkpoint(ray_session, runs_dir, tmp_path):
    steps = 40
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", run_tiny(
        runs_dir, tmp_path, f"phases.cognate.train.steps={steps}",
        "phases.cognate.train.checkpoint_every=5")))
    thread.start()
    deadline = time.monotonic() + 240
    while max(memory_steps(runs_dir), default=0) < 12:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.2)
    _, run_id = only_run(runs_dir)
    actor = ray.get_actor(f"cognate/trainer-memory@{run_id}")
    ray.kill(actor, no_restart=False)
    thread.join(timeout=300)
    assert result["code"] == 0
    store, run_id = only_run(runs_dir)
    rows = [m for m in store.metrics(run_id, name="loss") if m["model"] == "memory"]
    assert [m["step"] for m in rows] == list(range(2, steps + 1, 2))  # none lost, none twice
    resumed = {m["model"]: m["value"] for m in store.metrics(run_id, name="train/resumed_from")}
    assert resumed["memory"] >= 10 and resumed["reasoning"] == 0


def test_trainers_that_cannot_all_run_at_once_take_turns(ray_session, runs_dir, tmp_path, capsys):
    # 1 CPU each on 2 CPUs: two train, the third waits until one of them ends and frees its CPU.
    assert run_tiny(runs_dir, tmp_path, "phases.cognate.trainer_cpus=1",
                    "phases.cognate.train.steps=4", "phases.cognate.diversity_floor=0") == 0
    out = capsys.readouterr().out
    assert "2 running, 1 waiting to start (1 CPU, 0.33 GPU each)" in out
    store, run_id = only_run(runs_dir)
    metric = {(m["model"], m["name"]): m["value"] for m in store.metrics(run_id)}
    starts = sorted(metric[(n, "trainer/started_at")] for n in NAMES)
    ends = sorted(metric[(n, "trainer/ended_at")] for n in NAMES)
    assert starts[2] >= ends[0]  # the third started once a first one had ended
    assert {m["name"] for m in store.list_models(run_id)} == {"seed", *NAMES}


@pytest.mark.parametrize("value", ["64", "2.5"])
def test_trainer_share_no_node_can_hold_exits_2_before_work(ray_session, runs_dir, tmp_path,
                                                            capsys, value):
    assert run_tiny(runs_dir, tmp_path, f"phases.cognate.trainer_cpus={value}") == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: phases.cognate.trainer_cpus: got {float(value)}; allowed: at most "
                   "the cluster's 2 CPUs")
    assert not runs_dir.exists()  # no run directory, no registry
