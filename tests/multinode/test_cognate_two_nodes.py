"""Phase 1 (Cognate, tests/cognate_tiny.yaml) on two worker nodes on this machine (a head with
0 CPUs and two 1-CPU workers, `ray.placement=spread`): the run completes, the registry holds the
seed and the three specialists, and the phase summary shows trainers on both workers. The cluster
lives in a subprocess (tests/multinode/cognate_run.py): pytest's own Ray session is never touched."""
import json

import pytest

from forge.registry import RegistryStore
from tests.multinode.procs import COGNATE_SCENARIOS, run_scenario

pytestmark = [pytest.mark.multinode, pytest.mark.slow]
STEPS = 12
NAMES = ("reasoning", "memory", "adaptive")


def check_cognate_run(runs_dir, steps: int) -> dict:
    """Assert one finished Phase 1 run: 4 models, each specialist's loss at 2, 4, ..., steps
    exactly once, no duplicate metric rows. Returns the run id, metrics and summary."""
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    try:
        (run,) = store.list_runs()
        rid = run["id"]
        assert run["status"] == "done"
        phases = store.latest_phases(rid)
        assert phases["cognate"]["status"] == "done"
        assert [(r["phase"], r["attempt"]) for r in store.phase_runs(rid)] == [("cognate", 1)]
        models = {m["name"] for m in store.list_models(rid)}
        assert models == {"seed", *NAMES}
        metrics = store.metrics(rid)
        keys = [(m["phase"], m["model"], m["step"], m["name"]) for m in metrics]
        assert len(keys) == len(set(keys)), "duplicate metric rows"
        for name in NAMES:
            losses = sorted(m["step"] for m in metrics if m["name"] == "loss" and m["model"] == name)
            assert losses == list(range(2, steps + 1, 2)), (name, losses)
        return {"run": rid, "metrics": metrics,
                "summary": json.loads(phases["cognate"]["summary"])}
    finally:
        store.close()


def test_cognate_trainers_spread_over_two_workers(tmp_path):
    runs_dir = tmp_path / "runs"
    result = run_scenario("cognate-two-node", runs_dir, "--steps", str(STEPS),
                          timeout=150, script=COGNATE_SCENARIOS)
    assert result["exit"] == 0 and result["process_exit"] == 0, result["output"][-6000:]
    print({k: result[k] for k in ("cluster_up_s", "pipeline_s", "wall_s")})
    run = check_cognate_run(runs_dir, STEPS)
    nodes = run["summary"]["details"]["trainer_nodes"]
    assert set(nodes) == set(NAMES)
    workers = set(result["worker_nodes"])
    assert set(nodes.values()) == workers, (nodes, workers)  # both workers trained, head none
    assert run["summary"]["details"]["trainer_resources"]["num_cpus"] == 0.5
    resumed = {m["model"]: m["value"] for m in run["metrics"] if m["name"] == "train/resumed_from"}
    assert resumed == {n: 0.0 for n in NAMES}
