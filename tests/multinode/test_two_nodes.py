"""Two nodes on one machine (a head and a worker, 1 CPU each): the fixture pipeline completes and
the registry holds exactly the rows one run should have. The cluster lives in a subprocess
(tests/multinode/cluster_run.py): pytest's own Ray session is never touched."""
import pytest

from tests.multinode.procs import check_fixture_run, run_scenario

pytestmark = [pytest.mark.multinode, pytest.mark.slow]
STEPS = 20


def test_fixture_pipeline_on_two_nodes(tmp_path):
    runs_dir = tmp_path / "runs"
    result = run_scenario("two-node", runs_dir, "--steps", str(STEPS))
    assert result["exit"] == 0 and result["process_exit"] == 0, result["output"][-6000:]
    print({k: result[k] for k in ("cluster_up_s", "pipeline_s", "wall_s")})
    nodes = {result["head_node"], result["worker_node"]}
    placed = result["placements"]
    assert set(placed) == {"fixture_init", "fixture_train", "fixture_shrink"}
    for phase, where in placed.items():
        assert where["node"] in nodes, (phase, where)
        assert where["restarts"] == 0 and where["state"] == "DEAD", (phase, where)  # killed after
    check_fixture_run(runs_dir, STEPS)
