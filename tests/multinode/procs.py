"""Subprocess plumbing for the multi-node tests: every cluster runs outside the pytest process.

Each scenario runs in its own process group (start_new_session), and the Ray processes it starts
inherit that group, so a hung scenario is ended by killing exactly that group: never `ray stop`,
which stops every Ray on the machine, other people's included.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = str(ROOT / "tests" / "multinode" / "cluster_run.py")
COGNATE_SCENARIOS = str(ROOT / "tests" / "multinode" / "cognate_run.py")
PIPELINE = str(ROOT / "tests" / "run_fixture_pipeline.py")
FIXTURE = str(ROOT / "tests" / "fixture.yaml")
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@contextmanager
def ray_tmpdir():
    """A short private RAY_TMPDIR: Unix socket paths under it must stay below 108 bytes."""
    path = tempfile.mkdtemp(prefix="fmn-", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def ray_env(tmpdir: str) -> dict:
    """The environment of every process of these tests (see cluster_run.py for each setting)."""
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_TMPDIR": tmpdir,
            "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group `proc` leads, wait, then SIGKILL whatever is left of the group.

    Safe after `proc` exited too: stragglers (an orphaned Ray worker) keep the group id.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if sig == signal.SIGTERM and proc.poll() is not None:
            continue
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass


def run_group(cmd: list[str], env: dict, timeout: float) -> tuple[int, str]:
    """Run `cmd` in a new process group; on timeout kill the group and fail with its output."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, _ = proc.communicate(timeout=30)
        raise AssertionError(f"{cmd[1:3]} ran past {timeout:.0f}s:\n{out[-6000:]}") from None
    finally:
        kill_group(proc)
    return proc.returncode, out


def run_scenario(name: str, runs_dir: Path, *args: str, timeout: float = 150,
                 script: str = SCENARIOS) -> dict:
    """Run one scenario of `script` (cluster_run.py by default, or cognate_run.py); return its
    RESULT json (with the output attached)."""
    with ray_tmpdir() as tmp:
        started = time.monotonic()
        code, out = run_group([sys.executable, script, name, "--runs-dir", str(runs_dir),
                               *args], ray_env(tmp), timeout)
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"{name} printed no RESULT (exit {code}):\n{out[-6000:]}"
    result = json.loads(lines[-1][len("RESULT "):])
    result.update(process_exit=code, wall_s=round(time.monotonic() - started, 1), output=out)
    return result


def check_fixture_run(runs_dir: Path, steps: int) -> dict:
    """Assert the registry holds exactly one finished fixture run; return its rows."""
    from actors.restarts import EVENT
    from forge.registry import RegistryStore

    store = RegistryStore(Path(runs_dir) / "registry.db", readonly=True)
    try:
        (run,) = store.list_runs()
        rid = run["id"]
        assert run["status"] == "done"
        phase_rows = store.phase_runs(rid)
        assert [(r["phase"], r["attempt"]) for r in phase_rows] == [
            ("fixture_init", 1), ("fixture_train", 1), ("fixture_shrink", 1)]
        status = {r["phase"]: r["status"] for r in phase_rows}
        assert status["fixture_init"] == status["fixture_train"] == "done"
        assert status["fixture_shrink"] in ("done", "not_adopted")
        models = {m["phase"]: m for m in store.list_models(rid)}
        assert set(models) == {p for p, s in status.items() if s == "done"}
        for m in models.values():
            assert (Path(runs_dir) / m["path"] / "model.safetensors").is_file()
        metrics = store.metrics(rid)
        keys = [(m["phase"], m["model"], m["step"], m["name"]) for m in metrics]
        assert len(keys) == len(set(keys)), "duplicate metric rows"
        events = [m for m in metrics if m["name"] == EVENT]  # restarts, checked by the callers
        metrics = [m for m in metrics if m["name"] != EVENT]
        train = sorted(m["step"] for m in metrics if m["phase"] == "fixture_train")
        assert train == list(range(1, steps + 1)), "a training step lost or logged twice"
        by_phase = {p: sorted(m["name"] for m in metrics if m["phase"] == p) for p in status}
        assert by_phase["fixture_init"] == ["loss"]
        assert by_phase["fixture_shrink"] == ["loss_after", "loss_before"]
        return {"run": run, "phases": phase_rows, "models": models, "metrics": metrics,
                "restart_events": events}
    finally:
        store.close()
