"""Node loss in Phase 1: a head with 0 CPUs, two 1-CPU workers, trainers spread over both. Once
the trainers are placed a replacement worker joins; once the trainers of the victim worker (one
without the PhaseActor) have logged past a checkpoint, the victim is removed. Its trainers restart
on another node (phases.cognate.trainer_max_restarts), resume from their checkpoints
(`train/resumed_from` > 0), and the run completes with every loss row exactly once. The runs are
in a URI run storage and every node has its own cache directory, so the checkpoints the restarted
trainers resume from can only have come through the storage."""
from pathlib import Path

import pytest

from tests.multinode.procs import COGNATE_SCENARIOS, run_scenario
from tests.multinode.test_cognate_two_nodes import NAMES, check_cognate_run

pytestmark = [pytest.mark.multinode, pytest.mark.slow]
STEPS = 80  # long enough that the victim is removed well before training ends
CHECKPOINT_EVERY = 5
AFTER_STEP = 10


def test_worker_lost_mid_cognate_trainers_resume_from_checkpoints(tmp_path):
    shared, caches = tmp_path / "shared", tmp_path / "nodes"
    result = run_scenario("cognate-node-loss", shared.as_uri(), "--steps", str(STEPS),
                          "--checkpoint-every", str(CHECKPOINT_EVERY), "--cache-root", str(caches),
                          "--after-step", str(AFTER_STEP), timeout=200, script=COGNATE_SCENARIOS)
    assert result["exit"] == 0 and result["process_exit"] == 0, result["output"][-6000:]
    print({k: result[k] for k in ("cluster_up_s", "victims", "steps_at_remove", "after_remove_s",
                                  "wall_s")})
    victims = result["victims"]
    assert victims, "no trainer ran on the removed worker; the scenario proved nothing"
    for v in victims:
        assert AFTER_STEP <= result["steps_at_remove"][v] < STEPS, \
            f"{v} was not mid-training when its node went: {result['steps_at_remove']}"
    trainers = {name.split("trainer-", 1)[1].split("@")[0]: a
                for name, a in result["actors"].items() if a["class"] == "TrainerActor"}
    for name in NAMES:
        if name in victims:  # restarted once, elsewhere
            assert trainers[name]["restarts"] == 1
            assert trainers[name]["node"] != result["victim_node"]
        else:
            assert trainers[name]["restarts"] == 0
    run = check_cognate_run(Path(result["registry"]), STEPS)  # loss at 2, 4, ..., STEPS once each; 4 models
    resumed = {m["model"]: m["value"] for m in run["metrics"] if m["name"] == "train/resumed_from"}
    for name in NAMES:
        if name in victims:
            assert resumed[name] >= CHECKPOINT_EVERY, resumed  # from its checkpoint, not step 0
        else:
            assert resumed[name] == 0, resumed
    # The phase summary records where each trainer started: both workers.
    started_on = run["summary"]["details"]["trainer_nodes"]
    assert set(started_on.values()) == set(result["worker_nodes"])
