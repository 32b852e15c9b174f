"""What every page shares: the runs location this dashboard was started on, the cluster finder,
and the run / phase pickers (which follow the URL's ?run=...&phase=... so a view is a link)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable

import streamlit as st

from forge.registry import RegistryError
from forge.storage import StorageError
from forge.ui.data import RunsView, plan_of
from forge.ui.system import Cluster

DEFAULT_DASHBOARD = "http://127.0.0.1:8265"


@dataclass
class Settings:
    """How `forge ui` was started (set by forge.ui.app on every script run)."""

    runs_dir: str
    find_cluster: Callable[[list[str]], Cluster | None]
    ray_dashboard: str | None = None  # --ray-dashboard: the only place to look when given


SETTINGS: Settings | None = None


def settings() -> Settings:
    if SETTINGS is None:
        raise RuntimeError("forge.ui pages run inside forge.ui.app.main")
    return SETTINGS


def open_view() -> RunsView | None:
    """The registry opened read-only; None (with the reason on the page) when there is none yet."""
    try:
        return RunsView.open(settings().runs_dir)
    except (RegistryError, StorageError) as err:
        st.info(f"Nothing to show: {err}. Start a run with `python -m forge.submit "
                f"--runs-dir {settings().runs_dir}`.")
        return None


def open_view_quiet() -> RunsView | None:
    """The registry, or None without a message (pages that work without runs)."""
    try:
        return RunsView.open(settings().runs_dir)
    except (RegistryError, StorageError):
        return None


def pick(label: str, options: list[str], param: str, key: str | None = None) -> str | None:
    """A select box whose choice is kept in the URL query (`?param=value`)."""
    if not options:
        return None
    wanted = st.query_params.get(param)
    index = options.index(wanted) if wanted in options else 0
    choice = st.selectbox(label, options, index=index, key=key or f"pick-{param}")
    if st.query_params.get(param) != choice:
        st.query_params[param] = choice
    return choice


def pick_run(view: RunsView) -> dict | None:
    runs = view.store.list_runs()
    run_id = pick("Run", [r["id"] for r in runs], "run")
    return next((r for r in runs if r["id"] == run_id), None)


def phases_of(view: RunsView, run: dict) -> list[str]:
    """The run's planned phases, then any other phase it has rows for."""
    plan = plan_of(run)
    return plan + [p for p in view.store.latest_phases(run["id"]) if p not in plan]


def dashboard_candidates(view: RunsView | None) -> list[str]:
    """Where a Ray dashboard may answer: RAY_ADDRESS when it is an http address, the dashboard
    each running run recorded in its session.json, then the default local one."""
    if SETTINGS is not None and SETTINGS.ray_dashboard:
        return [SETTINGS.ray_dashboard]
    found = []
    address = os.environ.get("RAY_ADDRESS", "")
    if address.startswith("http"):
        found.append(address)
    for run in view.store.list_runs() if view else []:
        if run["status"] != "running":
            continue
        try:
            session = json.loads(view.storage.pull(f"{run['id']}/session.json").read_text())
        except (OSError, json.JSONDecodeError, StorageError):
            continue
        url = session.get("dashboard_url")
        if url:
            found.append(url if url.startswith("http") else f"http://{url}")
    return found + [DEFAULT_DASHBOARD]


@st.cache_resource(ttl=10, show_spinner=False)
def _find(candidates: tuple[str, ...], _finder) -> Cluster | None:
    return _finder(list(candidates))


def find_cluster(view: RunsView | None) -> Cluster | None:
    """The running Ray cluster, looked up at most every 10 s (None when none is up)."""
    return _find(tuple(dashboard_candidates(view)), settings().find_cluster)
