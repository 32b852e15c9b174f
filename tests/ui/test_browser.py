"""`forge ui` in headless Chromium: every page, asserting on what a person sees.

One server over a finished tiny run and a running one (tests/ui/fixture_runs.py), one browser
for the module. Screenshots go to $FORGE_UI_SCREENSHOTS (default: the test's temporary dir).
"""
import os
from pathlib import Path

import pytest

from tests.ui.browser import chromium, forge_ui, missing_browser, screenshot, wait_for_text
from tests.ui.fixture_runs import DONE, LIVE, QUIET_REASON, build

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(missing_browser() is not None, reason=f"browser tests: {missing_browser()}")]


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return build(tmp_path_factory.mktemp("ui-browser") / "runs")


@pytest.fixture(scope="module")
def url(fx):
    with forge_ui(fx.storage.local_root) as base:
        yield base


@pytest.fixture(scope="module")
def browser(url):
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return Path(os.environ.get("FORGE_UI_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))


def open_page(browser, url: str, path: str, *texts: str) -> str:
    """Load a page and wait for `texts` (its last-drawn parts): what the asserts then read."""
    browser.get(f"{url}/{path}")
    return wait_for_text(browser, *texts)


def test_overview_lists_runs_and_the_live_run_progresses(fx, url, browser, shots):
    body = open_page(browser, url, "", "refreshes every", "evomerge: pending")
    assert LIVE in body and DONE in body and "tiny-live" in body
    assert f"Run {LIVE}: running" in body
    assert "cognate: 3/12 steps over all trainers" in body and "evomerge: pending" in body
    fx.advance_live(9)  # the driver writes progress; the page refreshes by itself
    body = wait_for_text(browser, "cognate: 9/12 steps over all trainers", timeout=15)
    assert "cognate: 3/12" not in body
    screenshot(browser, shots / "overview-running.png")
    body = open_page(browser, url, f"?run={DONE}", f"Run {DONE}: done", "bitnet: finished")
    assert "not_adopted" in body and "val_bits_per_byte = 5.654" in body and "478.54 KiB" in body
    screenshot(browser, shots / "overview.png")


def test_phase_details_show_gate_curves_plot_and_wandb(url, browser, shots):
    body = open_page(browser, url, f"phase?run={DONE}&phase=quiet_star", "W&B offline runs")
    assert "not adopted (its input was handed on)" in body and QUIET_REASON in body
    body = open_page(browser, url, f"phase?run={DONE}&phase=evomerge", "W&B offline runs")
    assert "adopted · key metric: val_fitness = -14.2" in body
    assert "relative_gain" in body and "0.0334" in body  # the gate's numbers
    assert "evolve/best" in body and "-14.2" in body  # the curve's last value
    assert f"{DONE}/wandb/offline-run-20260101_000001-abc123" in body
    assert f"{DONE}/evomerge/fitness.png" in body  # the plot's caption
    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('img')).filter(i => i.naturalWidth > 300).length")
    assert images >= 1
    screenshot(browser, shots / "phase.png")


def test_model_browser_shows_manifest_lineage_and_commands(fx, url, browser, shots):
    body = open_page(browser, url, f"models?model={DONE}/bitnet/ternary", "Manifest", '"digest"')
    assert "5 of 5 models" in body
    for parent, child, method in [(f"{DONE}/cognate/memory", f"{DONE}/evomerge/champion", "evomerge:ties"),
                                  (f"{DONE}/evomerge/champion", f"{DONE}/bitnet/ternary", "bitnet")]:
        assert f"{parent}\n{child}\n{method}" in body  # a row of the edge table
    model_dir = fx.storage.local(f"{DONE}/bitnet/ternary")
    assert f"forge eval {model_dir}" in body and f"forge serve {model_dir}" in body
    assert "Download artifact (.zip)" in body
    svg_edges = browser.execute_script("return document.querySelectorAll('svg g.edge').length")
    assert svg_edges == 3  # the graph draws every parent edge, both of the merge's included
    screenshot(browser, shots / "models.png")


def test_system_monitor_falls_back_to_this_machine(url, browser, shots):
    body = open_page(browser, url, "system", "node(s), from", "refreshes every")
    assert "No Ray cluster answers" in body and "1 node(s), from psutil on this machine" in body
    assert "ALIVE (this machine)" in body and "GiB" in body
    screenshot(browser, shots / "system.png")


def test_config_editor_names_the_bad_key_and_gives_the_command(fx, url, browser, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    body = open_page(browser, url, "config", "valid: phases cognate", "pipeline-edited.yaml")
    assert "No Ray cluster is up" in body
    assert f"python -m forge.submit --config pipeline-edited.yaml --runs-dir {fx.storage.local_root}" in body
    area = browser.find_element(By.TAG_NAME, "textarea")
    area.click()
    area.send_keys(Keys.CONTROL, Keys.END)
    area.send_keys(Keys.ENTER, "run: {nmae: x}")
    area.send_keys(Keys.CONTROL, Keys.ENTER)  # Streamlit's "apply"
    body = wait_for_text(browser, "error: run.nmae: unknown key")
    assert "allowed keys: device, name, runs_dir, seed" in body and "valid: phases" not in body
    screenshot(browser, shots / "config.png")
