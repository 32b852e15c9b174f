"""`python -m forge.bench faults`: kill -9 the driver at random moments, resume, count the damage.

A clean run of the default pipeline at smoke-test size (config/presets/tiny.yaml) sets the
reference: its wall time, its models and its metric rows. Then N runs are each killed with
SIGKILL at a random moment (uniform over 10-90% of the clean wall time, seeded) and resumed with
`forge resume` until they finish (at most 3 resumes). Every driver starts its own local Ray on
127.0.0.1 (`--address local`); after the kill the rest of that driver's process tree is ended
too, as when its terminal or machine goes away. Counted: runs that completed, metric rows the
resumed run has that the clean run has not (duplicated or stray) and clean rows it lacks, and
models of the clean run missing from the resumed one. Goal: N/N completed, 0, 0.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from forge.config import DEFAULT_CONFIG
from forge.registry import RegistryStore

CONFIG = str(Path(DEFAULT_CONFIG).parent / "presets" / "tiny.yaml")
REPEATS = 1  # one repetition is N kills; the spread is in the facts
UNITS = {"clean_wall_s": "s", "kills": "count", "completed_runs": "count",
         "resumes_needed": "count", "extra_metric_rows": "rows", "lost_metric_rows": "rows",
         "lost_models": "count", "orphan_run_dirs": "count"}
SEED = 16
MAX_RESUMES = 3
_facts: dict = {}


def submit(runs_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "WANDB_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([sys.executable, "-m", "forge.submit", "--address", "local",
                             "--runs-dir", str(runs_dir), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the driver first (the fault), then whatever it started (its local Ray)."""
    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    for child in tree:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(tree, timeout=30)


def finish(proc: subprocess.Popen, timeout: float = 1800) -> int:
    try:
        proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    return proc.returncode


def snapshot(runs_dir: Path) -> tuple[str, str, set, set]:
    """(run id, status, metric keys, model names) of the only run in `runs_dir`."""
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    try:
        (run,) = store.list_runs()
        # model ids carry the run id (<run>/<phase>/<name>): compared without it; restart
        # events exist only in killed runs
        keys = {(m["phase"], m["model"].replace(run["id"], "RUN"), m["step"], m["name"])
                for m in store.metrics(run["id"]) if not m["name"].startswith("events/")}
        models = {m["id"].split("/", 1)[1] for m in store.list_models(run["id"])}
        return run["id"], run["status"], keys, models
    finally:
        store.close()


def registered(runs_dir: Path) -> bool:
    try:
        store = RegistryStore(runs_dir / "registry.db", readonly=True)
    except Exception:  # no registry yet, or being created
        return False
    try:
        return bool(store.list_runs())
    finally:
        store.close()


def orphan_dirs(runs_dir: Path, run_id: str) -> int:
    """Run directories a killed driver left that the registry does not know."""
    return sum(1 for p in runs_dir.iterdir() if p.is_dir() and p.name != run_id)


def running_phase(runs_dir: Path) -> str:
    try:
        store = RegistryStore(runs_dir / "registry.db", readonly=True)
        (run,) = store.list_runs()
    except Exception:  # killed before the run was registered
        return "(before the first phase)"
    rows = store.latest_phases(run["id"])
    return next((p for p, r in rows.items() if r["status"] == "running"), "(between phases)")


def killed_run(runs_dir: Path, after_s: float) -> tuple[int, str]:
    """Start a run, SIGKILL its driver after `after_s`, resume until done; (resumes, phase hit)."""
    proc = submit(runs_dir, "--config", CONFIG)
    time.sleep(after_s)
    if proc.poll() is not None:
        return 0, "(finished before the kill)"
    phase = running_phase(runs_dir)
    kill_tree(proc)
    if not registered(runs_dir):  # killed while Ray started: no run to resume, start again
        finish(submit(runs_dir, "--config", CONFIG))
        return 0, "(before the run was registered: started again)"
    for resumes in range(1, MAX_RESUMES + 1):
        run_id = snapshot(runs_dir)[0]
        if finish(submit(runs_dir, "--resume", run_id)) == 0:
            return resumes, phase
    return MAX_RESUMES, phase


def summary(keys: set) -> str:
    """'phase/name x count' of metric keys, for the facts (which rows differ, not just how many)."""
    counts: dict[str, int] = {}
    for phase, model, step, name in keys:
        label = f"{phase}/{name}@{step}"
        counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())) or "none"


def measure(quick: bool) -> dict[str, float]:
    kills = 1 if quick else 3
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        clean_dir = Path(tmp) / "clean"
        start = time.perf_counter()
        if finish(submit(clean_dir, "--config", CONFIG)) != 0:
            raise RuntimeError("the clean reference run failed")
        wall = time.perf_counter() - start
        _, _, clean_keys, clean_models = snapshot(clean_dir)
        completed = resumes = extra = lost_rows = lost_models = orphans = 0
        moments = []
        for i in range(kills):
            runs_dir = Path(tmp) / f"killed-{i}"
            after = rng.uniform(0.1, 0.9) * wall
            used, phase = killed_run(runs_dir, after)
            run_id, status, keys, models = snapshot(runs_dir)
            orphans += orphan_dirs(runs_dir, run_id)
            completed += status == "done"
            resumes += used
            extra += len(keys - clean_keys)
            lost_rows += len(clean_keys - keys)
            _facts[f"kill {i}: rows not in the clean run"] = summary(keys - clean_keys)
            _facts[f"kill {i}: clean rows it lacks"] = summary(clean_keys - keys)
            lost_models += len(clean_models - models)
            moments.append(f"{after:.0f} s ({phase}): {status} after {used} resume(s)")
    _facts["kills (moment, phase running, outcome)"] = "; ".join(moments)
    return {"clean_wall_s": wall, "kills": float(kills), "completed_runs": float(completed),
            "resumes_needed": float(resumes), "extra_metric_rows": float(extra),
            "lost_metric_rows": float(lost_rows), "lost_models": float(lost_models),
            "orphan_run_dirs": float(orphans)}


def setup(quick: bool) -> dict:
    return {"command": f"python -m forge.submit --address local --config {Path(CONFIG).name}, "
                       "SIGKILL at a random moment, then forge resume",
            "reference": "one clean run: its metric keys (phase, model, step, name) and models",
            "goal": "completed_runs = kills, extra_metric_rows = 0, lost_models = 0",
            "seed": SEED}


def facts() -> dict:
    """Facts known only after measuring (the kill moments), for the harness to record."""
    return dict(_facts)
