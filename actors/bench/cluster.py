"""`python -m forge.bench cluster`: what does spreading Phase 1 over two nodes cost?

Phase 1 (the default config's model and data, `--quick` 6 steps, full 30 steps per model) runs
through `forge.submit.main` on two `ray.cluster_utils.Cluster`s started in this process, one after
the other, with the same total CPUs:

- one node: a head with 2 CPUs;
- two nodes: a head with 1 CPU and a worker with 1 CPU.

Both use `ray.placement=spread` and `trainer_cpus=0.5` (one torch thread each), so the three
trainers fit either way (at the default equal share, 0.66 CPU, only one fits a 1-CPU node at a
time). The tokenizer is trained once into a shared cache before either run. Timed, from the
registry: `phase_s`, the phase's wall time (started..ended: data, seed, three trainers, their
evaluations, checks); `trainers_s`, first `trainer/started_at` to last `trainer/ended_at`
(each trainer's data and model load, training and evaluation); `train_s`, the training steps
alone (log_every=1: first step-1 loss row to the last final-step loss row). Cluster start-up
(`up_s`) is reported apart. Two repetitions; the layouts take turns going first. Goal:
two_over_one close to 1 (the overhead of distribution is small).

A third layout, `two_node_uri`, is `two_node` with the runs in a `file://` URI run storage and a
cache directory per node (`forge.storage`): `uri_over_shared_phase` is what going through the
storage (pull the seed, push checkpoints and models, pull them back to commit) costs over a shared
directory.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

# Before Ray is imported (see docs/cluster.md, "Several nodes on one machine"): 127.0.0.1 stays
# 127.0.0.1, one auth mode, no usage reporting.
for _key, _value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                     "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "WANDB_MODE": "disabled",
                     "HF_HUB_OFFLINE": "1"}.items():
    os.environ.setdefault(_key, _value)

import ray  # noqa: E402

from forge.config import DEFAULT_CONFIG, load  # noqa: E402

UNITS = {"one_node_phase_s": "s", "two_node_phase_s": "s", "two_over_one_phase": "ratio",
         "one_node_train_s": "s", "two_node_train_s": "s", "two_over_one_train": "ratio",
         "one_node_up_s": "s", "two_node_up_s": "s", "one_node_trainers_s": "s",
         "two_node_trainers_s": "s", "two_over_one_trainers": "ratio",
         "two_node_uri_up_s": "s", "two_node_uri_phase_s": "s", "two_node_uri_trainers_s": "s",
         "two_node_uri_train_s": "s", "uri_over_shared_phase": "ratio"}
REPEATS = 2  # the layouts take turns going first: other jobs on the machine come and go
LOOPBACK = "127.0.0.1"
OBJECT_STORE = 75 * 1024**2  # Ray's minimum
TRAINER_CPUS = 0.5
LAYOUTS = {"one_node": (2,), "two_node": (1, 1), "two_node_uri": (1, 1)}  # CPUs: head, workers
_ROUND = 0  # repetitions so far in this process: odd ones run the layouts in reverse order


def steps_for(quick: bool) -> int:
    return 6 if quick else 30


def overrides(quick: bool, tok: Path) -> list[str]:
    return ["wandb.mode=disabled", "pipeline.phases=[cognate]", "ray.placement=spread",
            f"phases.cognate.trainer_cpus={TRAINER_CPUS}",
            f"phases.cognate.train.steps={steps_for(quick)}", "phases.cognate.train.log_every=1",
            f"data.tokenizer_cache={tok}"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def node_args(num_cpus: int, head: bool, cache_dir: str | Path | None = None) -> dict:
    """`Cluster.add_node` arguments; `cache_dir` gives the node its own FORGE_CACHE_DIR (its
    mirror of a URI run storage), as separate machines would have."""
    args = {"num_cpus": num_cpus, "num_gpus": 0, "node_ip_address": LOOPBACK,
            "object_store_memory": OBJECT_STORE}
    if cache_dir is not None:
        args["env_vars"] = {"FORGE_CACHE_DIR": str(cache_dir)}
    if head:  # the default ports (8265, 52365) may be taken by another cluster on this machine
        args.update(include_dashboard=False, dashboard_port=free_port(),
                    dashboard_agent_listen_port=free_port())
    return args


def phase_times(registry: Path) -> dict[str, float]:
    """Phase wall time and the trainers' span, from the registry."""
    from forge.registry import RegistryStore

    store = RegistryStore(registry, readonly=True)
    try:
        (run,) = store.list_runs()
        (row,) = store.phase_runs(run["id"])
        if row["status"] != "done":
            raise RuntimeError(f"cognate ended {row['status']}: {row['error']}")
        metrics = store.metrics(run["id"])
        value = {(m["model"], m["name"]): m["value"] for m in metrics}
        starts = [v for (_, k), v in value.items() if k == "trainer/started_at"]
        ends = [v for (_, k), v in value.items() if k == "trainer/ended_at"]
        # log_every=1: step 1's row is written after the first step, the last after the last.
        losses = [m for m in metrics if m["name"] == "loss"]
        first = min(m["time"] for m in losses if m["step"] == 1)
        last = max(m["time"] for m in losses if m["step"] == max(x["step"] for x in losses))
        return {"phase_s": row["ended"] - row["started"], "trainers_s": max(ends) - min(starts),
                "train_s": last - first}
    finally:
        store.close()


def run_on(layout: tuple[int, ...], root: Path, sets: list[str], uri: bool) -> dict[str, float]:
    """Start a Cluster with `layout`, run Phase 1 on it with forge.submit, stop the cluster.
    `uri`: the runs live in a file:// run storage and every node has its own cache directory
    (nothing shared but the storage, as machines without a common disk)."""
    from ray.cluster_utils import Cluster

    from forge.storage import CACHE_ENV, RunStorage
    from forge.submit import main

    runs = (root / "shared").as_uri() if uri else str(root / "runs")
    cache = (lambda name: root / "caches" / name) if uri else (lambda name: None)
    saved = os.environ.get(CACHE_ENV)
    if uri:
        os.environ[CACHE_ENV] = str(cache("head"))  # this process is the driver, on the head
    started = time.monotonic()
    cluster = Cluster(initialize_head=True,
                      head_node_args=node_args(layout[0], head=True, cache_dir=cache("head")))
    try:
        for i, cpus in enumerate(layout[1:]):
            cluster.add_node(**node_args(cpus, head=False, cache_dir=cache(f"worker-{i}")))
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, namespace="forge", log_to_driver=False)
        up = time.monotonic() - started
        args = ["--config", str(DEFAULT_CONFIG), "--runs-dir", runs]
        for s in sets:
            args += ["--set", s]
        code = main(args)
        if code != 0:
            raise RuntimeError(f"forge.submit exited {code} on layout {layout}")
        registry = RunStorage(runs).registry_path
    finally:
        ray.shutdown()
        cluster.shutdown()
        if saved is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = saved
    return {"up_s": up, **phase_times(registry)}


def measure(quick: bool) -> dict[str, float]:
    from forge.phases.common import prepare_data

    if ray.is_initialized():
        raise RuntimeError("cluster benchmark: Ray is already initialised in this process")
    saved = os.environ.get("RAY_TMPDIR")
    tmpdir = tempfile.mkdtemp(prefix="fbc-", dir="/tmp")  # short: Unix socket paths < 108 bytes
    os.environ["RAY_TMPDIR"] = tmpdir  # this benchmark's ray_current_cluster stays private
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            sets = overrides(quick, root / "tok")
            prepare_data(load(DEFAULT_CONFIG, sets), root / "warm")  # tokenizer into the cache
            out: dict[str, float] = {}
            global _ROUND
            order = list(LAYOUTS.items())[::1 if _ROUND % 2 == 0 else -1]
            _ROUND += 1
            for name, layout in order:
                t = run_on(layout, root / name, sets, uri=name.endswith("_uri"))
                out.update({f"{name}_{k}": v for k, v in t.items()})
    finally:
        if saved is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = saved
        import shutil

        shutil.rmtree(tmpdir, ignore_errors=True)
    out["two_over_one_phase"] = out["two_node_phase_s"] / out["one_node_phase_s"]
    out["two_over_one_train"] = out["two_node_train_s"] / out["one_node_train_s"]
    out["two_over_one_trainers"] = out["two_node_trainers_s"] / out["one_node_trainers_s"]
    out["uri_over_shared_phase"] = out["two_node_uri_phase_s"] / out["two_node_phase_s"]
    return out


def setup(quick: bool) -> dict:
    cfg = load(DEFAULT_CONFIG)
    train = cfg.phase("cognate").train
    return {"steps_per_model": steps_for(quick), "batch_size": train.batch_size,
            "seq_len": cfg.data.seq_len, "trainers": len(cfg.phase("cognate").specialisations),
            "trainer_cpus": TRAINER_CPUS, "placement": "spread",
            "one_node": "head 2 CPUs", "two_node": "head 1 CPU + worker 1 CPU",
            "two_node_uri": "as two_node, runs in a file:// URI storage, one cache per node",
            "goal_two_over_one": "close to 1.0"}
