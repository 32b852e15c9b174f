"""Page 3, model browser: filter the registered models, read one's manifest and lineage graph,
download its artifact as a zip, copy the command that evaluates or serves it."""
from __future__ import annotations

import streamlit as st

from forge.console import human_bytes
from forge.storage import RunStorage, masked
from forge.ui import common
from forge.ui.data import (RunsView, artifact_zip, filter_models, lineage_dot, lineage_edges,
                           manifest_of, model_commands)

ALL = "(all)"


def page() -> None:
    st.title("Model browser")
    view = common.open_view()
    if view is None:
        return
    try:
        models = view.store.list_models()
        chosen = filters(models)
        if chosen:
            show_model(view, chosen)
    finally:
        view.close()


def filters(models: list[dict]) -> dict | None:
    """The filter row and the matching models' table; returns the model picked among them."""
    runs = [ALL] + sorted({m["run"] for m in models}, reverse=True)
    phases = [ALL] + sorted({m["phase"] for m in models})
    c1, c2, c3, c4 = st.columns(4)
    run = c1.selectbox("Run", runs, key="models-run")
    phase = c2.selectbox("Phase", phases, key="models-phase")
    text = c3.text_input("Name contains", key="models-text")
    biggest = max((m["bytes"] for m in models), default=0)
    max_kib = c4.number_input("At most (KiB)", min_value=0, value=biggest // 1024 + 1, key="models-size")
    found = filter_models(models, "" if run == ALL else run, "" if phase == ALL else phase, text,
                          int(max_kib) * 1024)
    st.caption(f"{len(found)} of {len(models)} models")
    st.table([{"model": m["id"], "phase": m["phase"], "name": m["name"], "params": f"{m['params']:,}",
               "size": human_bytes(m["bytes"])} for m in found] or [{"model": "(no match)"}])
    ids = [m["id"] for m in found]
    picked = common.pick("Model", ids, "model")
    return next((m for m in found if m["id"] == picked), None)


def show_model(view: RunsView, model: dict) -> None:
    st.header(model["id"])
    st.write(f"{model['params']:,} parameters, {human_bytes(model['bytes'])} on disk, "
             f"sha256 {model['sha256'][:16]}…")
    commands = model_commands(view.storage, model)
    st.code(f"{commands['eval']}\n{commands['serve']}\n{commands['show']}", language="bash")
    st.download_button("Download artifact (.zip)",  # built when clicked, not on every rerun
                       data=lambda: artifact_zip(RunStorage(common.settings().runs_dir), model),
                       file_name=f"{model['id'].replace('/', '_')}.zip", mime="application/zip")
    st.subheader("Lineage")
    edges = lineage_edges(view.store, model["id"])
    if edges:
        st.graphviz_chart(lineage_dot(edges, model["id"]))
        st.table([{"parent": p, "child": c, "method": m} for p, c, m in edges])
    else:
        st.write("No parents: this model starts its lineage.")
    st.subheader("Manifest")
    manifest = manifest_of(view.storage, model)
    if manifest is None:
        st.warning(f"no readable manifest.json at {masked(view.storage.uri(model['path']))}")
    else:
        st.json(manifest, expanded=1)
