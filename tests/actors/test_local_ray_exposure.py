"""The local Ray that forge.submit starts listens on loopback only (issue 16, item 2): the
listening sockets of every process in its tree (driver, GCS, raylet, agents, workers).
"""
import json
import os
import subprocess
import sys

import psutil

from actors.cluster import LOCAL_ONLY_ENV, tighten_auth_token
from tests.conftest import ROOT

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def listening(root: psutil.Process) -> set[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket in `root`'s process tree."""
    found = set()
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return found
    for proc in procs:
        try:
            name = proc.name()
            found |= {(name, c.laddr.ip, c.laddr.port) for c in proc.net_connections(kind="inet")
                      if c.status == psutil.CONN_LISTEN}
        except psutil.Error:  # the process ended between the listing and the look
            continue
    return found


# The driver side of a run's start (forge.submit -> actors.cluster.connect with no cluster
# running), one actor and one task so worker processes exist, then the listening sockets of the
# whole process tree. (A whole fixture run costs ~45 s here; this is the same start-up path.)
PROBE = """
import json, sys, psutil, ray
from actors.cluster import connect
from forge.config.sections import RayConfig
from tests.actors.test_local_ray_exposure import listening

session = connect(RayConfig(num_cpus=1, include_dashboard=False, object_store_mb=75), "local")
Echo = ray.remote(num_cpus=0)(type("Echo", (), {"ping": lambda self: 1}))
actor = Echo.remote()
ray.get([actor.ping.remote(), ray.remote(lambda: 1).remote()], timeout=120)
print(json.dumps(sorted(listening(psutil.Process()))))
session.close()
"""


def test_local_ray_listens_on_loopback_only():
    env = {k: v for k, v in os.environ.items() if k not in (LOCAL_ONLY_ENV, "RAY_ADDRESS")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = [tuple(s) for s in json.loads(proc.stdout.strip().splitlines()[-1])]
    names = {name for name, _, _ in seen}
    assert {"gcs_server", "raylet"} <= names, seen  # the listing really saw Ray's servers
    assert any(name.startswith("ray::") for name in names), seen  # and worker/agent processes
    exposed = [s for s in seen if s[1] not in LOOPBACK]
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_auth_token_made_owner_only(tmp_path):
    token = tmp_path / "auth_token"
    token.write_text("secret")
    token.chmod(0o644)
    tighten_auth_token(token)
    assert token.stat().st_mode & 0o777 == 0o600
    assert token.read_text() == "secret"  # nothing lost
    tighten_auth_token(tmp_path / "absent")  # no token (auth disabled): nothing to do, no error
    assert not (tmp_path / "absent").exists()
