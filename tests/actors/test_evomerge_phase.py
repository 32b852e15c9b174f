"""Phase 2 end to end on the session Ray: Tune trials score candidates, the scheduler evolves them,
the champion is registered with lineage; and the private PBT API the scheduler relies on."""
import inspect
import json
import math
import os

import pytest
import ray
import torch
from ray.tune.schedulers import PopulationBasedTraining

from actors.evolution import EvolutionScheduler
from forge import submit
from forge.config import load
from forge.models import CognateForCausalLM, cognate_config_from
from forge.phases.common import prepare_data
from forge.pipeline import save_artifact
from forge.registry import RegistryStore
from tests.conftest import ROOT

pytestmark = pytest.mark.ray
CONFIG = str(ROOT / "tests" / "evomerge_tiny.yaml")


def make_parents(tmp_path) -> list[str]:
    """A seed model and three parents that differ from it by small, different task vectors."""
    cfg = load(CONFIG)
    vocab = len(prepare_data(cfg, tmp_path / "tok").tokenizer)
    torch.manual_seed(0)
    seed = CognateForCausalLM(cognate_config_from(cfg.model, vocab))
    paths = []
    for i, name in enumerate(("reasoning", "memory", "adaptive")):
        model = CognateForCausalLM(seed.config)
        g = torch.Generator().manual_seed(i)
        model.load_state_dict({k: v + 0.02 * torch.randn(v.shape, generator=g) * v.abs().mean()
                               for k, v in seed.state_dict().items()})
        save_artifact(model, tmp_path / "parents" / name, metadata={"vocab_size": vocab,
                                                                   "seed_dir": "../seed"})
        paths.append(str(tmp_path / "parents" / name))
    save_artifact(seed, tmp_path / "parents" / "seed", metadata={"vocab_size": vocab})
    return paths


def test_evolution_produces_a_champion_with_lineage(ray_session, runs_dir, tmp_path, capsys):
    parents = make_parents(tmp_path)
    args = ["--config", CONFIG, "--runs-dir", str(runs_dir), "--phases", "evomerge",
            "--set", "phases.evomerge.evolve.generations=1"]
    code = submit.main(args + [a for p in parents for a in ("--input", p)])
    assert code == 0, capsys.readouterr()
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    (run,) = store.list_runs()
    row = store.latest_phases(run["id"])["evomerge"]
    details = json.loads(row["summary"])["details"]
    # elitism over the parents too: never worse than the best parent on validation
    assert details["champion_fitness"] >= details["best_parent_fitness"]
    assert [r["generation"] for r in details["history"]] == [0, 1]
    assert all(0 < r["diversity"] <= 1 and math.isfinite(r["best"]) for r in details["history"])
    assert set(details["test"]) == {"champion"} | {f"{run['id']}/inputs/{i}-{n}" for i, n in
                                                   enumerate(("reasoning", "memory", "adaptive"))}
    assert 0 <= details["timing"]["idle_share"] < 1 and details["timing"]["candidates_per_min"] > 0
    assert (runs_dir / run["id"] / details["plot"]).stat().st_size > 1000  # the PNG
    (champ,) = store.list_models(run["id"], phase="evomerge")
    meta = json.loads(champ["metadata"])
    parents_of = {p["parent"] for p in store.parents(champ["id"])}
    if meta["kept_parent"]:
        assert parents_of == {meta["kept_parent"]}
    else:
        assert len(parents_of) == 3 and meta["ancestry"][0]["candidate"]["id"] == meta["candidate"]["id"]
        assert meta["candidate"]["recipe"]["interp"] in ("linear", "slerp")
    fitness_rows = store.metrics(run["id"], phase="evomerge", name="evolve/best")
    assert [m["step"] for m in fitness_rows] == [0, 1]
    state = json.loads((runs_dir / run["id"] / "checkpoints" / "evomerge" / "state.json").read_text())
    assert state["state"]["generation"] == 1
    scored = (runs_dir / run["id"] / "checkpoints" / "evomerge" / "candidates.jsonl").read_text()
    assert len(scored.splitlines()) == 16  # 8 candidates x 2 generations, each scored once
    assert (runs_dir / run["id"] / "checkpoints" / "evomerge" / "tune").is_dir()


def test_two_parents_break_the_input_contract(ray_session, runs_dir, tmp_path, capsys):
    parents = make_parents(tmp_path)[:2]
    code = submit.main(["--config", CONFIG, "--runs-dir", str(runs_dir), "--phases", "evomerge"]
                       + [a for p in parents for a in ("--input", p)])
    assert code == 1
    assert "evomerge input: expected 3..3 models, got 2" in capsys.readouterr().err


def test_the_private_pbt_api_the_scheduler_overrides_is_still_there():
    """EvolutionScheduler overrides private PopulationBasedTraining methods (RAY_NOTES.md): if a
    Ray upgrade changes them, this fails before any evolution silently misbehaves."""
    assert ray.__version__.startswith("2.60."), ray.__version__
    params = list(inspect.signature(PopulationBasedTraining._checkpoint_or_exploit).parameters)
    assert params == ["self", "trial", "tune_controller", "upper_quantile", "lower_quantile"]
    source = inspect.getsource(PopulationBasedTraining.on_trial_result)
    assert "self._checkpoint_or_exploit(" in source and "self._next_perturbation_sync" in source
    assert "_trial_state" in inspect.getsource(PopulationBasedTraining.__init__)
    assert EvolutionScheduler.choose_trial_to_run is not PopulationBasedTraining.choose_trial_to_run


def test_a_killed_evolution_resumes_from_its_last_generation(ray_session, runs_dir, tmp_path):
    """SIGKILL the driver after a generation is saved; `--resume` continues the evolution from
    there (no generation scored twice) instead of starting over."""
    import signal
    import subprocess
    import sys
    import time

    parents = make_parents(tmp_path)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    script = str(ROOT / "tests" / "run_fixture_pipeline.py")
    args = [sys.executable, script, "--address", ray_session, "--config", CONFIG, "--runs-dir",
            str(runs_dir), "--phases", "evomerge", "--set", "phases.evomerge.evolve.generations=1"]
    proc = subprocess.Popen(args + [a for p in parents for a in ("--input", p)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300

    def saved_generation() -> int:
        states = list(runs_dir.glob("*/checkpoints/evomerge/state.json"))
        return json.loads(states[0].read_text())["state"]["generation"] if states else -1

    while saved_generation() < 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = saved_generation()
    assert killed_at == 0
    (run_id,) = [p.name for p in runs_dir.iterdir() if p.is_dir()]
    resumed = subprocess.run([sys.executable, script, "--address", ray_session, "--resume", run_id,
                              "--runs-dir", str(runs_dir)], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    details = json.loads(store.latest_phases(run_id)["evomerge"]["summary"])["details"]
    assert details["resumed_from_generation"] == killed_at + 1
    assert [r["generation"] for r in details["history"]] == [0, 1]
    log = (runs_dir / run_id / "checkpoints" / "evomerge" / "candidates.jsonl").read_text()
    ids = [json.loads(line)["candidate"]["id"] for line in log.splitlines()]
    assert len(ids) == len(set(ids)) == 16  # 2 generations x 8, none scored twice
