"""A real `ray start --head` through cluster/start-head.sh (its own temp dir, every port free and
on 127.0.0.1), then the fixture pipeline through `forge.submit` by address and through
`ray job submit`.

The head runs with `--block` in its own process group: stopping it means SIGTERM to that
process (it then stops its node) and SIGKILL to anything left in the group. Plain `ray stop`
would stop every Ray process on the machine, including other people's test sessions.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.multinode.procs import (FIXTURE, LOOPBACK, PIPELINE, ROOT, free_port, kill_group,
                                   check_fixture_run, ray_env, ray_tmpdir, run_group)

pytestmark = [pytest.mark.multinode, pytest.mark.slow]
RAY = str(Path(sys.executable).with_name("ray"))
START_HEAD = str(ROOT / "cluster" / "start-head.sh")
STEPS = 5


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


@pytest.fixture
def head(tmp_path):
    """cluster/start-head.sh with the job server; yields (gcs address, dashboard url, env)."""
    with ray_tmpdir() as tmp:
        port, dash = free_port(), free_port()
        env = {**ray_env(tmp),
               "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
               # A SIGTERMed `ray start --block` drains its node for up to 30 s; not needed here.
               "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
               "FORGE_BLOCK": "1", "FORGE_NODE_IP": LOOPBACK, "FORGE_TEMP_DIR": f"{tmp}/ray",
               "FORGE_HEAD_PORT": str(port), "FORGE_DASHBOARD_HOST": LOOPBACK,
               "FORGE_DASHBOARD_PORT": str(dash),
               # Other clusters may run on this machine: every port free, workers' too.
               "FORGE_MIN_WORKER_PORT": "0", "FORGE_MAX_WORKER_PORT": "0",
               **{name: str(free_port()) for name in (
                   "FORGE_CLIENT_PORT", "FORGE_NODE_MANAGER_PORT", "FORGE_OBJECT_MANAGER_PORT",
                   "FORGE_RUNTIME_ENV_PORT", "FORGE_AGENT_GRPC_PORT", "FORGE_METRICS_PORT",
                   "FORGE_AGENT_PORT")}}
        cmd = [START_HEAD, "--num-cpus", "2", "--num-gpus", "0",
               "--object-store-memory", str(75 * 1024**2), "--include-dashboard", "true",
               "--disable-usage-stats"]
        log_path = tmp_path / "start-head.log"
        log = open(log_path, "w")
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            url = f"http://{LOOPBACK}:{dash}"
            wait_http(f"{url}/api/version", proc, log_path)
            print(f"start-head.sh: dashboard up in {time.monotonic() - started:.1f}s")
            assert f"python -m forge.submit --address {LOOPBACK}:{port}" in log_path.read_text()
            yield f"{LOOPBACK}:{port}", url, env
        finally:
            stopping = time.monotonic()
            kill_group(proc, grace=20)
            log.close()
            print(f"head stopped in {time.monotonic() - stopping:.1f}s")


def test_submit_by_address_and_by_ray_job_submit(head, tmp_path):
    address, dashboard, env = head
    runs_a = tmp_path / "by-address"
    started = time.monotonic()
    code, out = run_group([sys.executable, PIPELINE, "--address", address, "--config", FIXTURE,
                           "--runs-dir", str(runs_a), "--set", f"phases.fixture_train.steps={STEPS}"],
                          env, timeout=120)
    assert code == 0, out[-6000:]
    assert f"dashboard: {dashboard}" in out
    check_fixture_run(runs_a, STEPS)
    print(f"forge.submit --address: {time.monotonic() - started:.1f}s")
    started = time.monotonic()

    # The job runs on this machine in the same environment: absolute paths, no --working-dir.
    runs_b = tmp_path / "by-job"
    job_id = f"forge-test-{int(time.time())}"
    code, out = run_group([RAY, "job", "submit", "--address", dashboard, "--submission-id",
                           job_id, "--", sys.executable, PIPELINE, "--config", FIXTURE,
                           "--runs-dir", str(runs_b), "--set", f"phases.fixture_train.steps={STEPS}"],
                          env, timeout=150)
    assert code == 0, out[-6000:]
    assert "[fixture_train] done" in out  # the job's output streams back
    with urllib.request.urlopen(f"{dashboard}/api/jobs/{job_id}", timeout=10) as reply:
        job = json.load(reply)
    assert job["status"] == "SUCCEEDED", job
    check_fixture_run(runs_b, STEPS)
    print(f"ray job submit: {time.monotonic() - started:.1f}s")
