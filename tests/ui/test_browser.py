"""`forge ui` in headless Chromium: every page, asserting on what a person sees.

One server over a finished tiny run and a running one (tests/ui/fixture_runs.py), one browser
for the module. With $FORGE_UI_SCREENSHOTS set, each page is also saved there as a PNG (the
docs/ui/ pictures come from a real run: tests/ui/screenshots.py).
"""
import json
import os
import time
import zipfile
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
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(url, downloads):
    with chromium(downloads) as driver:
        yield driver


@pytest.fixture(scope="module")
def shots():
    """save(driver, name): a PNG of the page when $FORGE_UI_SCREENSHOTS names a directory."""
    folder = os.environ.get("FORGE_UI_SCREENSHOTS")
    return lambda driver, name: screenshot(driver, Path(folder) / name) if folder else None


def open_page(browser, url: str, path: str, *texts: str) -> str:
    """Load a page and wait until every one of `texts` is visible (Streamlit draws element by
    element and reruns fragments on its own): the page's assertion; fails naming what is missing."""
    browser.get(f"{url}/{path}")
    return wait_for_text(browser, *texts, timeout=30)


def test_overview_lists_runs_and_the_live_run_progresses(fx, url, browser, shots):
    open_page(browser, url, "", LIVE, DONE, "tiny-live", f"Run {LIVE}: running",
              "cognate: 3/12 steps over all trainers", "evomerge: pending", "refreshes every")
    fx.advance_live(9)  # the driver writes progress; the page refreshes by itself
    body = wait_for_text(browser, "cognate: 9/12 steps over all trainers", timeout=15)
    assert "cognate: 3/12" not in body
    shots(browser, "overview-running.png")
    open_page(browser, url, f"?run={DONE}", f"Run {DONE}: done", "not_adopted",
              "val_bits_per_byte = 5.654", "478.54 KiB", "bitnet: finished")
    shots(browser, "overview.png")


def test_phase_details_show_gate_curves_plot_and_wandb(url, browser, shots):
    open_page(browser, url, f"phase?run={DONE}&phase=quiet_star",
              "not adopted (its input was handed on)", QUIET_REASON, "No W&B files for this phase")
    open_page(browser, url, f"phase?run={DONE}&phase=evomerge",
              "adopted · key metric: val_fitness = -14.2",
              "relative_gain\n0.0334",  # the gate's numbers
              "evolve/best\n(phase)\n3\n2\n-14.2",  # a curve's last value
              f"{DONE}/evomerge/fitness.png",  # the plot's caption
              f"wandb sync ", f"{DONE}/wandb/offline-run-20260101_000001-abc123")
    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('img')).filter(i => i.naturalWidth > 300).length")
    assert images >= 1  # fitness.png, drawn
    shots(browser, "phase.png")


def test_model_browser_shows_manifest_lineage_and_commands(fx, url, browser, shots, downloads):
    model_dir = fx.storage.local(f"{DONE}/bitnet/ternary")
    edge_rows = [f"{p}\n{c}\n{m}" for p, c, m in [  # rows of the edge table
        (f"{DONE}/evomerge/champion", f"{DONE}/bitnet/ternary", "bitnet"),
        (f"{DONE}/cognate/memory", f"{DONE}/evomerge/champion", "evomerge:ties"),
        (f"{DONE}/cognate/reasoning", f"{DONE}/evomerge/champion", "evomerge:ties")]]
    open_page(browser, url, f"models?model={DONE}/bitnet/ternary", "5 of 5 models", *edge_rows,
              f"forge eval {model_dir}", f"forge serve {model_dir}", "Download artifact (.zip)",
              '"digest"')
    svg_edges = browser.execute_script("return document.querySelectorAll('svg g.edge').length")
    assert svg_edges == 3  # the graph draws every parent edge, both of the merge's included
    shots(browser, "models.png")
    from selenium.webdriver.common.by import By

    browser.find_element(By.XPATH, "//button[contains(., 'Download artifact (.zip)')]").click()
    target = downloads / f"{DONE}_bitnet_ternary.zip"
    deadline = time.monotonic() + 20
    while not target.is_file() and time.monotonic() < deadline:
        time.sleep(0.25)
    with zipfile.ZipFile(target) as archive:  # the artifact, as the person downloading gets it
        assert sorted(archive.namelist()) == ["ternary/config.json", "ternary/manifest.json",
                                              "ternary/model.safetensors"]
        manifest = json.loads(archive.read("ternary/manifest.json"))
    assert manifest["digest"] == fx.store.get_model(f"{DONE}/bitnet/ternary")["sha256"]


def test_system_monitor_falls_back_to_this_machine(url, browser, shots):
    open_page(browser, url, "system", "No Ray cluster answers", "1 node(s), from psutil on this machine",
              "ALIVE (this machine)", "GiB", "refreshes every")
    shots(browser, "system.png")


def test_config_editor_names_the_bad_key_and_gives_the_command(fx, url, browser, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, url, "config", "valid: phases cognate", "No Ray cluster is up",
              f"python -m forge.submit --config pipeline-edited.yaml --runs-dir {fx.storage.local_root}")
    area = browser.find_element(By.TAG_NAME, "textarea")
    area.click()
    area.send_keys(Keys.CONTROL, Keys.END)
    area.send_keys(Keys.ENTER, "run: {nmae: x}")
    area.send_keys(Keys.CONTROL, Keys.ENTER)  # Streamlit's "apply"
    body = wait_for_text(browser, "error: run.nmae: unknown key; allowed keys: device, name, runs_dir, seed")
    assert "valid: phases" not in body
    shots(browser, "config.png")
