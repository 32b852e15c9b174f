"""Page 2, phase details: metric curves, the gate's decision and numbers, the phase's plots,
and where its W&B offline files are."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from forge.storage import StorageError
from forge.ui import common
from forge.ui.data import (RunsView, final_metrics, gate_decision, metric_curves, phase_plots,
                           wandb_runs)


def page() -> None:
    st.title("Phase details")
    view = common.open_view()
    if view is None:
        return
    try:
        run = common.pick_run(view)
        phase = common.pick("Phase", common.phases_of(view, run), "phase") if run else None
        if phase is None:
            st.write("This run has no phases yet.")
            return
        show_phase(view, run["id"], phase)
    finally:
        view.close()


def show_phase(view: RunsView, run_id: str, phase: str) -> None:
    gate(gate_decision(view.store.latest_phases(run_id).get(phase)))
    curves(metric_curves(view.store, run_id, phase))
    with st.expander("Every metric's last value"):
        st.table(final_metrics(view.store, run_id, phase) or [{"metric": "(none logged)"}])
    try:
        plots, wandb = phase_plots(view.storage, run_id, phase), wandb_runs(view.storage, run_id, phase)
    except StorageError as err:
        st.error(f"run storage: {err}")
        return
    st.subheader("Plots")
    for path in plots:
        st.image(str(path), caption=view.storage.rel(path))
    if not plots:
        st.write("This phase wrote no plots.")
    st.subheader("W&B offline runs")
    for location in wandb:
        st.code(f"wandb sync {location}", language="bash")
    if not wandb:
        st.write("No W&B files for this phase (wandb.mode disabled, or not run yet).")


def gate(decision: dict) -> None:
    st.subheader("Gate decision")
    st.markdown(f"**{decision['verdict']}** · key metric: `{decision['key metric']}`")
    if decision["reason"]:
        st.markdown(f"Reason: {decision['reason']}")
    if decision["error"]:
        st.error(decision["error"])
    if decision["headline"]:
        st.table([{"number": k, "value": f"{v:.6g}"} for k, v in decision["headline"].items()])
    if decision["numbers"]:
        with st.expander(f"All {len(decision['numbers'])} numbers the phase reported"):
            st.table([{"number": k, "value": f"{v:.6g}"} for k, v in decision["numbers"].items()])


PREFERRED = ("loss", "lr", "tokens_per_s", "evolve/best", "evolve/mean", "evolve/diversity",
             "train/loss", "reward", "accuracy")  # drawn first when a phase logs them


def curves(series: dict[str, dict[str, dict]]) -> None:
    st.subheader("Metric curves")
    if not series:
        st.write("No metric was logged at more than one step.")
        return
    default = [n for n in PREFERRED if n in series][:4] or list(series)[:4]
    shown = st.multiselect("Curves", list(series), default=default)
    latest = []
    for name in shown:
        for model, points in series[name].items():
            step = max(points)
            value = points[step]
            latest.append({"metric": name, "model": model, "steps": len(points),
                           "last step": step, "last value": "NaN" if value is None else f"{value:.6g}"})
    if latest:
        st.table(latest)
    columns = st.columns(2)
    for i, name in enumerate(shown):
        by_model = series[name]
        with columns[i % 2]:
            st.markdown(f"**{name}**")
            st.altair_chart(curve_chart(by_model), use_container_width=True)


def curve_chart(by_model: dict[str, dict]) -> alt.Chart:
    """One metric over steps, a line per model; the y axis fits the values (not from zero)."""
    frame = pd.DataFrame([{"step": step, "model": model, "value": value}
                          for model, points in by_model.items() for step, value in points.items()])
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step"), y=alt.Y("value:Q", scale=alt.Scale(zero=False), title=None),
        color=alt.Color("model:N", title=None), tooltip=["model", "step", "value"]).properties(height=220)
