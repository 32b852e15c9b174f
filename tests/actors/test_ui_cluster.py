"""The dashboard against a real Ray cluster (its own, with the Ray dashboard, on loopback):
nodes through the state API, a Ray Job submitted and finished, the forge gauges exported,
and the system monitor and config editor pages in headless Chromium."""
import json
import subprocess
import sys
import time
import urllib.request

import pytest
from ray.job_submission import JobSubmissionClient

from actors.metrics import gauge_values
from actors.ui_cluster import RayCluster, node_reading
from tests.ui.browser import (ROOT, chromium, forge_ui, free_port, missing_browser, visible_text,
                              wait_for_text)

EMPTY_PLAN = "pipeline: {phases: []}\nwandb: {mode: disabled}\n"


@pytest.fixture(scope="module")
def ray_cluster():
    proc = subprocess.Popen([sys.executable, "-m", "tests.actors.ui_cluster_helper"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        cluster = None
        deadline = time.monotonic() + 60
        while cluster is None and time.monotonic() < deadline:
            cluster = RayCluster.find([info["dashboard"]])
            time.sleep(0.5)
        assert cluster is not None, "the Ray dashboard did not answer within 60 s"
        yield cluster, info
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


def submit_when_ready(cluster: RayCluster, runs_dir: str, timeout: float = 180) -> str:
    """Submit; the job agent takes a few seconds after the dashboard to accept jobs."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return cluster.submit(EMPTY_PLAN, runs_dir)
        except RuntimeError as err:
            if "No available agent" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(1)


def wait_job(cluster: RayCluster, submission: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    status = cluster.job_status(submission)
    while status not in ("SUCCEEDED", "FAILED", "STOPPED") and time.monotonic() < deadline:
        time.sleep(1)
        status = cluster.job_status(submission)
    return status


def wait_for_any(driver, texts: list[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = visible_text(driver)
        if any(t in body for t in texts):
            return body
        time.sleep(0.25)
    raise AssertionError(f"none of {texts} on the page within {timeout:.0f}s")


def test_gauge_values_pick_loss_and_rate():
    assert gauge_values({"loss": 2.0, "lr": 1e-3, "tokens_per_s": 900.0}) == {
        "forge_loss": 2.0, "forge_tokens_per_second": 900.0}
    assert gauge_values({"train/loss": float("nan"), "evolve/best": 1.0}) == {}


def test_node_reading_from_the_reporter_agent_shape():
    class Node:
        node_id, node_name, node_ip, state, resources_total = "ab" * 20, "", "10.0.0.2", "ALIVE", {"CPU": 4}
    stats = {"cpu": 12.5, "cpus": [4, 2], "mem": [8 * 1024**3, 6 * 1024**3, 25.0, 2 * 1024**3],
             "disk": {"/": [100, 40, 60, 40.0]},
             "gpus": [{"name": "RTX 2060", "utilizationGpu": 30, "memoryUsed": 1024, "memoryTotal": 6144}]}
    reading = node_reading(Node(), stats)
    assert reading["node"] == "ab" * 6 and reading["cpus"] == 4 and reading["cpu_percent"] == 12.5
    assert (reading["mem_used"], reading["disk_used"], reading["disk_total"]) == (2 * 1024**3, 40, 100)
    assert reading["gpus"] == [{"name": "RTX 2060", "util_percent": 30, "mem_used": 1024**3,
                                "mem_total": 6 * 1024**3}]
    assert node_reading(Node(), {})["mem_used"] is None  # a node that reported nothing yet


@pytest.mark.slow
def test_nodes_job_and_gauges_on_a_real_cluster(ray_cluster, tmp_path):
    cluster, info = ray_cluster
    assert RayCluster.find([f"http://127.0.0.1:{free_port()}"]) is None
    nodes = cluster.nodes()
    assert len(nodes) == 1 and nodes[0]["state"] == "ALIVE"
    assert nodes[0]["cpus"] >= 1 and 0 < nodes[0]["mem_used"] < nodes[0]["mem_total"]
    assert 0 < nodes[0]["disk_used"] < nodes[0]["disk_total"]
    # The job runs forge.submit on the cluster, which refuses the empty plan as bad input
    # (exit 2): the job ends FAILED with forge's one-line reason in its logs.
    submission = submit_when_ready(cluster, str(tmp_path / "runs"))
    assert wait_job(cluster, submission) == "FAILED"
    logs = JobSubmissionClient(cluster.dashboard_url).get_job_logs(submission)
    assert f"--runs-dir {tmp_path / 'runs'}" in logs
    assert "pipeline.phases: empty, nothing to run" in logs
    found, deadline = [], time.monotonic() + 30  # Ray exports app metrics every ~10 s
    while len(found) < 3 and time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{info['metrics_port']}/metrics").read().decode()
        found = [line for line in text.splitlines() if line.startswith("ray_forge_") and 'run="ui-test"' in line]
        time.sleep(1)
    values = {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in found}
    assert values == {"ray_forge_phase_progress": 0.25, "ray_forge_loss": 2.5,
                      "ray_forge_tokens_per_second": 1500.0}


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(missing_browser() is not None, reason=f"browser tests: {missing_browser()}")
def test_system_monitor_and_job_submission_in_the_browser(ray_cluster, tmp_path):
    from selenium.webdriver.common.by import By

    cluster, _ = ray_cluster
    runs = tmp_path / "runs"
    runs.mkdir()
    with forge_ui(runs, ray_dashboard=cluster.dashboard_url) as url, chromium() as driver:
        driver.get(f"{url}/system")
        wait_for_text(driver, "Ray cluster up: Ray dashboard", "1 node(s), from the Ray state API",
                      "ALIVE", "refreshes every", timeout=30)
        link = driver.find_element(By.LINK_TEXT, "Ray dashboard").get_attribute("href")
        assert link.rstrip("/") == cluster.dashboard_url
        driver.get(f"{url}/config")
        wait_for_text(driver, "valid: phases", "Submit as Ray Job")
        deadline = time.monotonic() + 180  # the job agent starts a while after the dashboard
        while True:
            driver.find_element(By.XPATH, "//button[contains(., 'Submit as Ray Job')]").click()
            time.sleep(1)  # the rerun replaces an earlier attempt's message
            body = wait_for_any(driver, ["submitted Ray Job raysubmit_", "submit failed: "])
            if "submitted Ray Job raysubmit_" in body:
                break
            assert "No available agent" in body and time.monotonic() < deadline, body[-500:]
            time.sleep(2)
    submission = body.split("submitted Ray Job ")[1].split(":")[0]
    assert cluster.job_status(submission) in ("PENDING", "RUNNING", "SUCCEEDED")
    JobSubmissionClient(cluster.dashboard_url).stop_job(submission)  # the default pipeline: minutes


def test_a_gauge_that_cannot_be_set_never_raises(caplog):
    from actors.metrics import record_metrics

    record_metrics("r", "p", "m", {"loss": "not a number"})  # float() fails inside
    assert "forge gauge record_metrics not set" in caplog.text
