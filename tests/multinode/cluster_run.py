"""Run the fixture pipeline on a `ray.cluster_utils.Cluster` of several nodes on this machine.

Run by tests/multinode/ in a subprocess, never inside pytest (pytest owns one session Ray):

    python tests/multinode/cluster_run.py node-loss --runs-dir DIR [--steps N] [--after-rows K]

`node-loss`: a head with 0 CPUs (it still hosts the RegistryActor: 0 CPUs plus the head-node
resource) and one worker with 1 CPU, so every phase actor runs on the worker; a separate driver process runs the pipeline; once K training metric rows
exist, a second worker is added and the first one removed.

Every node binds 127.0.0.1 only. Set RAY_TMPDIR to a short private directory: Ray writes its
sessions and `ray_current_cluster` there, so nobody's `address="auto"` finds this cluster.
Exit code 0 when the pipeline exited 0; the last line is `RESULT {json}` for the test to check.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# Before Ray is imported: one auth mode everywhere, no usage reporting, no W&B. With
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 Ray takes 127.0.0.1 as this machine's address (as on macOS):
# otherwise ray.init rewrites "127.0.0.1:port" to the LAN address, where these nodes do not listen.
for _key, _value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                     "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                     "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}.items():
    os.environ.setdefault(_key, _value)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from actors.bench.cluster import node_args  # noqa: E402  (the benchmark builds nodes the same way)
FIXTURE = str(ROOT / "tests" / "fixture.yaml")
PIPELINE = str(ROOT / "tests" / "run_fixture_pipeline.py")


def start_cluster(head_cpus: int):
    from ray.cluster_utils import Cluster

    started = time.monotonic()
    cluster = Cluster(initialize_head=True, head_node_args=node_args(head_cpus, head=True))
    worker = cluster.add_node(**node_args(1, head=False))
    cluster.wait_for_nodes()
    return cluster, worker, time.monotonic() - started


def placements(cluster) -> dict:
    """Phase actor name -> {node, restarts, state}, from the GCS actor table (no dashboard)."""
    table = cluster.global_state.actor_table(None)
    return {a["Name"].split("/")[0]: {"node": a["Address"]["NodeID"], "restarts": a["NumRestarts"],
                                      "state": a["State"]}
            for a in table.values() if a["ActorClassName"] == "PhaseActor"}


def train_rows(db: Path, phase: str = "fixture_train") -> list[dict]:
    from forge.registry import RegistryStore

    if not db.exists():
        return []
    try:
        store = RegistryStore(db, readonly=True)
        try:
            runs = store.list_runs()
            return store.metrics(runs[0]["id"], phase=phase) if runs else []
        finally:
            store.close()
    except Exception:  # noqa: BLE001 -- the file may still be being created; ask again
        return []


def node_loss(args) -> dict:
    db = Path(args.runs_dir) / "registry.db"
    cluster, first, up_s = start_cluster(head_cpus=0)
    driver = None
    try:
        driver = subprocess.Popen(
            [sys.executable, PIPELINE, "--address", cluster.address, "--config", FIXTURE,
             "--runs-dir", args.runs_dir, "--set", f"phases.fixture_train.steps={args.steps}"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while len(rows := train_rows(db)) < args.after_rows:
            if driver.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"training never reached {args.after_rows} rows "
                                   f"(driver exit {driver.poll()}): {driver.communicate()[0]}")
            time.sleep(0.1)
        rows_at_loss = len(rows)
        second = cluster.add_node(**node_args(1, head=False))
        removed_at = time.time()
        cluster.remove_node(first)
        rows_removed = len(train_rows(db))
        # Recovery: the retried run() logs step 1 again (an upsert refreshes its time).
        recovered_s = None
        while recovered_s is None and driver.poll() is None and time.time() < removed_at + 120:
            step1 = [r for r in train_rows(db) if r["step"] == 1]
            if step1 and step1[0]["time"] > removed_at:
                recovered_s = step1[0]["time"] - removed_at
            time.sleep(0.05)
        out, _ = driver.communicate(timeout=240)
        return {"exit": driver.returncode, "cluster_up_s": round(up_s, 2),
                "rows_at_loss": rows_at_loss, "rows_when_removed": rows_removed,
                "recovered_s": None if recovered_s is None else round(recovered_s, 2),
                "first_node": first.node_id, "second_node": second.node_id,
                "head_node": cluster.head_node.node_id, "placements": placements(cluster),
                "driver_output": out[-4000:]}
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.wait()
        cluster.shutdown()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", choices=("node-loss",))
    p.add_argument("--runs-dir", required=True)
    p.add_argument("--steps", type=int, default=20, help="fixture_train steps")
    p.add_argument("--after-rows", type=int, default=20,
                   help="node-loss: training rows to wait for before the node is lost")
    args = p.parse_args()
    result = node_loss(args)
    print("RESULT " + json.dumps(result), flush=True)
    return 0 if result["exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
