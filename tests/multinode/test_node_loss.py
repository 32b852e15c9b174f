"""Node loss mid-phase: the worker running fixture_train is removed; its PhaseActor restarts on a
new worker (max_restarts/max_task_retries from phases.<name>.max_restarts) and the run completes
with every training step logged exactly once (metrics are upserted by run, phase, model, step,
name). The head has 0 CPUs, so phase actors can only run on workers; it still hosts the
RegistryActor (0 CPUs plus the head-node resource)."""
import pytest

from tests.multinode.procs import check_fixture_run, run_scenario

pytestmark = [pytest.mark.multinode, pytest.mark.slow]
STEPS = 900  # long enough that adding a worker (~1-2 s) ends well before training does


def test_worker_lost_mid_training_run_completes(tmp_path):
    runs_dir = tmp_path / "runs"
    result = run_scenario("node-loss", runs_dir, "--steps", str(STEPS), "--after-rows", "20",
                          timeout=240)
    assert result["exit"] == 0 and result["process_exit"] == 0, result["output"][-6000:]
    assert 20 <= result["rows_at_loss"] and result["rows_when_removed"] < STEPS, \
        "the node was not lost mid-training; the scenario proved nothing"
    print({k: result[k] for k in ("cluster_up_s", "rows_at_loss", "rows_when_removed",
                                  "recovered_s", "wall_s")})
    placed = result["placements"]
    assert placed["fixture_init"]["node"] == result["first_node"]
    assert placed["fixture_train"]["restarts"] == 1
    assert placed["fixture_train"]["node"] == result["second_node"]  # restarted there
    assert placed["fixture_shrink"]["node"] == result["second_node"]
    assert result["recovered_s"] is not None, "training never logged again after the loss"
    rows = check_fixture_run(runs_dir, STEPS)
    # The restart was invisible to the driver: one attempt, no failed phase rows.
    assert all(r["error"] is None for r in rows["phases"])
    # ...but not to the registry: the restarted PhaseActor recorded one restart event.
    assert [(e["phase"], e["model"], e["step"]) for e in rows["restart_events"]] == [
        ("fixture_train", "phase-actor", 0)]
