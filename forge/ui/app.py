"""The Streamlit app of `forge ui`: five pages over one runs location.

Started by `forge ui` (forge/ui/launch.py) through the entry script actors/ui_app.py, which adds
the Ray cluster finder: this package stays free of Ray like the rest of forge/.
"""
from __future__ import annotations

import argparse
from typing import Callable

import streamlit as st

from forge.ui import common, editor, models, monitor, overview, phase
from forge.ui.system import Cluster

PAGES = [  # (page function, title, URL path, icon)
    (overview.page, "Pipeline overview", "overview", ":material/monitoring:"),
    (phase.page, "Phase details", "phase", ":material/insights:"),
    (models.page, "Model browser", "models", ":material/account_tree:"),
    (monitor.page, "System monitor", "system", ":material/memory:"),
    (editor.page, "Config editor", "config", ":material/edit_note:"),
]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="forge ui (app)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--ray-dashboard", default=None)
    return parser.parse_args(argv)


def main(argv: list[str], find_cluster: Callable[[list[str]], Cluster | None]) -> None:
    """Draw the page the URL names (one Streamlit script run)."""
    args = parse(argv)
    common.SETTINGS = common.Settings(args.runs_dir, find_cluster, args.ray_dashboard)
    st.set_page_config(page_title="Agent Forge", page_icon=":material/precision_manufacturing:",
                       layout="wide")
    pages = [st.Page(func, title=title, url_path=path, icon=icon, default=(i == 0))
             for i, (func, title, path, icon) in enumerate(PAGES)]
    st.navigation(pages).run()
