"""Run Phase 1 (Cognate, tests/cognate_tiny.yaml) on a `ray.cluster_utils.Cluster` on this machine.

Run by tests/multinode/ in a subprocess (see procs.run_scenario), never inside pytest:

    python tests/multinode/cognate_run.py cognate-two-node  --runs-dir DIR [--steps N] [--config Y]
    python tests/multinode/cognate_run.py cognate-node-loss --runs-dir DIR [--steps N] [--after-step K]

Both: a head with 0 CPUs (it hosts the RegistryActor and the 0-CPU PhaseActor) and two workers
with 1 CPU each; `ray.placement=spread` and `trainer_cpus=0.5`, so the three trainers can be
spread over both workers (at the default equal share, 0.66 CPU, only one trainer fits a 1-CPU node
at a time). With `--cache-root DIR` every node gets its own FORGE_CACHE_DIR (DIR/head,
DIR/worker-0, ...): given a URI `--runs-dir` (file:///...), no node can read another's files
except through the run storage, as on machines without a shared disk.

`cognate-two-node`: this process connects and runs `forge.submit.main`.
`cognate-node-loss`: a separate driver process runs `forge.submit --address`; once the trainers
are placed, a replacement worker is added; once the trainers of the victim (a worker with trainers
and without the PhaseActor) have logged a loss at step >= K (past a checkpoint), it is removed.

Settings and lessons as in cluster_run.py (127.0.0.1 only, private RAY_TMPDIR).
Exit code 0 when the pipeline exited 0; the last line is `RESULT {json}`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

for _key, _value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                     "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                     "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}.items():
    os.environ.setdefault(_key, _value)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from actors.bench.cluster import node_args  # noqa: E402
from forge.storage import CACHE_ENV, RunStorage  # noqa: E402

TINY = str(ROOT / "tests" / "cognate_tiny.yaml")
TRAINER_CPUS = 0.5


def submit_args(args) -> list[str]:
    sets = ["ray.placement=spread", f"phases.cognate.trainer_cpus={TRAINER_CPUS}",
            f"phases.cognate.train.steps={args.steps}",
            f"phases.cognate.train.checkpoint_every={args.checkpoint_every}",
            f"data.tokenizer_cache={Path(args.cache_root or args.runs_dir).parent / 'tok'}"]
    out = ["--config", args.config, "--runs-dir", args.runs_dir]
    for s in sets:
        out += ["--set", s]
    return out


def node_cache(args, name: str) -> str | None:
    return str(Path(args.cache_root) / name) if args.cache_root else None


def start_cluster(args):
    from ray.cluster_utils import Cluster

    started = time.monotonic()
    cluster = Cluster(initialize_head=True,
                      head_node_args=node_args(0, head=True, cache_dir=node_cache(args, "head")))
    workers = [cluster.add_node(**node_args(1, head=False, cache_dir=node_cache(args, f"worker-{i}")))
               for i in range(2)]
    cluster.wait_for_nodes()
    return cluster, workers, time.monotonic() - started


def actors_by_phase(cluster) -> dict:
    """Phase -> {node, restarts, state} of its PhaseActor (named '<phase>/<run id>')."""
    return {name.split("/")[0]: a for name, a in actors(cluster).items()
            if a["class"] == "PhaseActor"}


def actors(cluster) -> dict:
    """Actor name -> {class, node, restarts, state}, from the GCS actor table (no dashboard)."""
    table = cluster.global_state.actor_table(None)
    return {a["Name"]: {"class": a["ActorClassName"], "node": a["Address"]["NodeID"],
                        "restarts": a["NumRestarts"], "state": a["State"]}
            for a in table.values() if a["Name"]}


def trainer_nodes(cluster) -> dict[str, str]:
    """Specialist name -> node of its trainer now, for the trainers alive."""
    out = {}
    for name, a in actors(cluster).items():
        if a["class"] == "TrainerActor" and a["state"] == "ALIVE":
            out[name.split("trainer-", 1)[1].split("@")[0]] = a["node"]
    return out


def loss_steps(db: Path) -> dict[str, int]:
    """Model -> highest step with a loss row so far."""
    from forge.registry import RegistryStore

    if not db.exists():
        return {}
    try:
        store = RegistryStore(db, readonly=True)
        try:
            runs = store.list_runs()
            if not runs:
                return {}
            out: dict[str, int] = {}
            for m in store.metrics(runs[0]["id"], name="loss"):
                out[m["model"]] = max(out.get(m["model"], 0), m["step"])
            return out
        finally:
            store.close()
    except Exception:  # noqa: BLE001 -- the file may still be being created; ask again
        return {}


def two_node(args) -> dict:
    import ray

    from forge.submit import main

    cluster, workers, up_s = start_cluster(args)
    try:
        ray.init(address=cluster.address, namespace="forge", log_to_driver=False)
        started = time.monotonic()
        code = main(submit_args(args))
        return {"exit": code, "cluster_up_s": round(up_s, 2),
                "pipeline_s": round(time.monotonic() - started, 2),
                "head_node": cluster.head_node.node_id, "registry": str(registry_path(args)),
                "worker_nodes": [w.node_id for w in workers], "actors": actors(cluster),
                "actors_by_phase": actors_by_phase(cluster)}
    finally:
        ray.shutdown()
        cluster.shutdown()


def registry_path(args) -> Path:
    """The registry the driver (on the head) writes: beside the runs, or in the head's mirror."""
    return RunStorage(args.runs_dir).registry_path


def node_loss(args) -> dict:
    db = registry_path(args)
    cluster, workers, up_s = start_cluster(args)
    driver = None
    try:
        driver = subprocess.Popen(
            [sys.executable, "-m", "forge.submit", "--address", cluster.address,
             *submit_args(args)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 150

        def wait_for(what: str, ready) -> None:
            while not ready():
                if driver.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{what} never happened (driver exit {driver.poll()}): "
                                       f"{driver.communicate()[0]}")
                time.sleep(0.1)

        # 1. The three trainers are placed. The victim is a worker with trainers but without the
        #    PhaseActor (0 CPUs, it may sit on any node): this scenario is about trainers.
        wait_for("placing three trainers", lambda: len(trainer_nodes(cluster)) == 3)
        placed_before = trainer_nodes(cluster)
        phase_node = next(a["node"] for a in actors(cluster).values() if a["class"] == "PhaseActor")
        victim = next(w for w in workers if w.node_id != phase_node
                      and w.node_id in placed_before.values())
        victims = sorted(n for n, node in placed_before.items() if node == victim.node_id)
        # 2. A replacement worker joins now (after placement, so no trainer starts there), while
        #    training runs: joining takes seconds.
        second = cluster.add_node(**node_args(1, head=False, cache_dir=node_cache(args, "worker-2")))
        cluster.wait_for_nodes()
        # 3. Once the victim's trainers have logged past a checkpoint, the victim goes.
        wait_for(f"victims {victims} reaching step {args.after_step}",
                 lambda: all(loss_steps(db).get(v, 0) >= args.after_step for v in victims))
        steps_at_remove = loss_steps(db)
        removed_at = time.time()
        cluster.remove_node(victim)
        out, _ = driver.communicate(timeout=240)
        return {"exit": driver.returncode, "cluster_up_s": round(up_s, 2),
                "after_remove_s": round(time.time() - removed_at, 2),
                "victims": victims, "steps_at_remove": steps_at_remove,
                "trainers_before": placed_before, "phase_node": phase_node,
                "victim_node": victim.node_id, "second_node": second.node_id,
                "worker_nodes": [w.node_id for w in workers],
                "head_node": cluster.head_node.node_id, "registry": str(db),
                "actors": actors(cluster), "driver_output": out[-4000:]}
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.wait()
        cluster.shutdown()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", choices=("cognate-two-node", "cognate-node-loss"))
    p.add_argument("--runs-dir", required=True, help="a directory or a URI (run.runs_dir)")
    p.add_argument("--config", default=TINY, help="pipeline YAML (default tests/cognate_tiny.yaml)")
    p.add_argument("--cache-root", default=None,
                   help="give each node its own FORGE_CACHE_DIR under this directory")
    p.add_argument("--steps", type=int, default=12, help="phases.cognate.train.steps")
    p.add_argument("--checkpoint-every", type=int, default=4)
    p.add_argument("--after-step", type=int, default=12,
                   help="node-loss: loss step the victim's trainers must reach first")
    args = p.parse_args()
    if args.cache_root:  # this process and the driver it starts play the head node's part
        os.environ[CACHE_ENV] = node_cache(args, "head")
    result = two_node(args) if args.scenario == "cognate-two-node" else node_loss(args)
    print("RESULT " + json.dumps(result), flush=True)
    return 0 if result["exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
