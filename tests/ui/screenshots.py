"""The screenshots in docs/ui/, taken over a real tiny pipeline run (not fixture rows):

    python -m tests.ui.screenshots --runs-dir /tmp/forge-ui-demo/runs --out docs/ui

Starts `python -m forge.submit --config tests/pipeline_tiny.yaml` (EvoMerge with 2 generations,
W&B offline) into --runs-dir, photographs the overview while it runs, then every page once it
is done. Needs Debian's chromium and chromium-driver (tests/ui/browser.py).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from forge.pipeline.progress import read_progress
from forge.registry import RegistryError, RegistryStore
from forge.storage import RunStorage
from tests.ui.browser import ROOT, chromium, forge_ui, screenshot, wait_for_text

SUBMIT = [sys.executable, "-m", "forge.submit", "--config", "tests/pipeline_tiny.yaml",
          "--set", "wandb.mode=offline", "--set", "phases.evomerge.evolve.generations=2",
          "--set", "phases.cognate.train.steps=40", "--set", "run.name=ui-demo", "--address", "local"]


def newest_run(storage: RunStorage) -> dict | None:
    try:
        store = RegistryStore(storage.registry_path, readonly=True)
    except RegistryError:
        return None
    try:
        runs = store.list_runs()
        return runs[0] if runs else None
    finally:
        store.close()


def start_run(runs_dir: Path) -> tuple[subprocess.Popen, str]:
    """The pipeline in the background; returns once its second phase reports progress."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_AUTH_MODE="disabled",
               RAY_USAGE_STATS_ENABLED="0", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(SUBMIT + ["--runs-dir", str(runs_dir)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    storage = RunStorage(runs_dir)
    while proc.poll() is None:
        run = newest_run(storage)
        progress = read_progress(storage, run["id"]) if run and run["status"] == "running" else None
        if progress and progress["phase"] == "cognate" and progress["done"] >= progress["total"] // 3:
            return proc, run["id"]
        time.sleep(0.5)
    raise RuntimeError(f"forge.submit ended early with exit code {proc.returncode}")


def shoot_finished(driver, url: str, run_id: str, out: Path) -> None:
    pages = [("", f"?run={run_id}", ("bitnet: finished",), "overview.png"),
             ("phase", f"?run={run_id}&phase=cognate", ("W&B offline runs",), "phase-cognate.png"),
             ("phase", f"?run={run_id}&phase=evomerge", ("W&B offline runs",), "phase.png"),
             ("models", f"?model={run_id}/bitnet/ternary", ('"digest"',), "models.png"),
             ("system", "", ("refreshes every",), "system.png")]
    for path, query, texts, name in pages:
        driver.get(f"{url}/{path}{query}")
        wait_for_text(driver, *texts, timeout=30)
        time.sleep(1.5)  # charts and images finish drawing
        screenshot(driver, out / name)
    config_with_error(driver, url, out / "config.png")


def shoot_system_with_ray(runs_dir: Path, out: Path) -> None:
    """The system monitor over a real local Ray (its own, loopback, with the Ray dashboard)."""
    helper = subprocess.Popen([sys.executable, "-m", "tests.actors.ui_cluster_helper"], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        dashboard = json.loads(helper.stdout.readline())["dashboard"]
        with forge_ui(runs_dir, ray_dashboard=dashboard) as url, chromium() as driver:
            driver.get(f"{url}/system")
            wait_for_text(driver, "from the Ray state API", "refreshes every", timeout=60)
            screenshot(driver, out / "system-ray.png")
    finally:
        helper.stdin.close()
        helper.wait(timeout=60)


def config_with_error(driver, url: str, path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{url}/config")
    wait_for_text(driver, "valid: phases", "pipeline-edited.yaml", timeout=30)
    area = driver.find_element(By.TAG_NAME, "textarea")
    area.click()
    area.send_keys(Keys.CONTROL, Keys.END)
    area.send_keys(Keys.ENTER, "run: {name: demo, seeed: 1}")
    area.send_keys(Keys.CONTROL, Keys.ENTER)
    wait_for_text(driver, "error: run.seeed: unknown key")
    screenshot(driver, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    parser.add_argument("--finished-only", action="store_true",
                        help="no new run: photograph the newest (finished) run's pages again")
    args = parser.parse_args()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    if args.finished_only:
        run_id = newest_run(RunStorage(args.runs_dir))["id"]
        with forge_ui(args.runs_dir) as url, chromium() as driver:
            shoot_finished(driver, url, run_id, args.out)
        shoot_system_with_ray(args.runs_dir, args.out)
        return 0
    proc, run_id = start_run(args.runs_dir)
    with forge_ui(args.runs_dir) as url, chromium() as driver:
        driver.get(url)
        wait_for_text(driver, f"Run {run_id}: running", "refreshes every", timeout=30)
        time.sleep(1.0)
        screenshot(driver, args.out / "overview-running.png")
        if proc.wait(timeout=900) != 0:
            raise RuntimeError(f"forge.submit failed with exit code {proc.returncode}")
        shoot_finished(driver, url, run_id, args.out)
    shoot_system_with_ray(args.runs_dir, args.out)
    print(f"screenshots of run {run_id} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
