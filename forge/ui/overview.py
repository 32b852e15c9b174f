"""Page 1, pipeline overview: every run, and the phase grid of one with live progress bars."""
from __future__ import annotations

import streamlit as st

from forge.ui import common
from forge.ui.data import RunsView, phase_rows, run_rows

REFRESH_S = 2.0  # how often a running run's grid is read again


def page() -> None:
    st.title("Pipeline overview")
    view = common.open_view()
    if view is None:
        return
    try:
        st.caption(f"runs in {view.display} (registry read-only)")
        st.subheader("Runs")
        st.table(run_rows(view.store))
        run = common.pick_run(view)
    finally:
        view.close()
    if run is None:
        return
    # A fragment reruns on its own: only a running run's grid needs to.
    refresh = REFRESH_S if run["status"] == "running" else None
    st.fragment(run_every=refresh)(phase_grid)(run["id"])


def phase_grid(run_id: str) -> None:
    """The phases of `run_id`: a table, then one progress bar per phase."""
    view = RunsView.open(common.settings().runs_dir)
    try:
        run = view.store.get_run(run_id)
        rows = phase_rows(view, run_id)
    finally:
        view.close()
    st.subheader(f"Run {run_id}: {run['status']}")
    if not rows:
        st.write("No phases recorded yet.")
        return
    st.table([{k: v for k, v in r.items() if not k.startswith("progress")} for r in rows])
    for r in rows:
        st.progress(r["progress"], text=f"{r['phase']}: {r['progress text']}")
    if run["status"] == "running":
        st.caption(f"refreshes every {REFRESH_S:g} s while the run goes")
