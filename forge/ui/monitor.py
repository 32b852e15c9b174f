"""Page 4, system monitor: CPU, memory, disk and GPU per node (Ray when a cluster is up,
psutil on this machine otherwise) and the Ray dashboard link."""
from __future__ import annotations

import streamlit as st

from forge.ui import common
from forge.ui.system import local_node, node_rows

REFRESH_S = 5.0


def page() -> None:
    st.title("System monitor")
    view = common.open_view_quiet()
    try:
        tried, cluster = common.dashboard_candidates(view), common.find_cluster(view)
    finally:
        if view is not None:
            view.close()
    if cluster is None:
        st.info(f"No Ray cluster answers (tried {', '.join(tried)}); showing this machine "
                "through psutil.")
    else:
        st.markdown(f"Ray cluster up: [Ray dashboard]({cluster.dashboard_url}) "
                    f"(`{cluster.dashboard_url}`): actors, logs, jobs.")
    st.fragment(run_every=REFRESH_S)(readings)(cluster)


def readings(cluster) -> None:
    nodes, source = None, "psutil on this machine"
    if cluster is not None:
        try:
            nodes, source = cluster.nodes(), "the Ray state API and each node's reporter agent"
        except Exception as err:  # noqa: BLE001  (a dying cluster: fall back, say why)
            st.warning(f"Ray did not answer ({str(err).splitlines()[0]}); showing this machine")
    nodes = nodes or [local_node()]
    st.subheader(f"{len(nodes)} node(s), from {source}")
    st.table(node_rows(nodes))
    for n in nodes:
        if n.get("cpu_percent") is not None:
            st.progress(min(1.0, n["cpu_percent"] / 100), text=f"{n['node']} CPU {n['cpu_percent']:.0f}%")
        if n.get("mem_total"):
            share = n["mem_used"] / n["mem_total"]
            st.progress(min(1.0, share), text=f"{n['node']} memory {100 * share:.0f}%")
    st.caption(f"refreshes every {REFRESH_S:g} s")
