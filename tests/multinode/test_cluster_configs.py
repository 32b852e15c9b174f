"""cluster/: the `ray up` configs pass Ray's own schema, install as README says and start nodes
through the scripts; the KubeRay manifest has a GPU worker group; the scripts fail fast with a
usage message. Nothing here starts Ray (a second or two)."""
import subprocess

import pytest
import yaml

import ray
from tests.multinode.procs import ROOT

pytestmark = pytest.mark.multinode
CLUSTER = ROOT / "cluster"
README_INSTALL = 'pip install torch==2.13.0 -e ".[test]"'


def ray_up_config(name: str) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((CLUSTER / name).read_text())
    validate_config(prepare_config(config))  # what `ray up` runs first
    return config


def test_readme_install_line_is_the_one_the_configs_use():
    assert README_INSTALL in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", ["local.yaml", "aws.yaml"])
def test_ray_up_configs_are_valid_and_use_the_scripts(name):
    config = ray_up_config(name)
    setup = " && ".join(config["setup_commands"])
    assert README_INSTALL in setup
    head = " ".join(config["head_start_ray_commands"])
    worker = " ".join(config["worker_start_ray_commands"])
    assert "cluster/start-head.sh" in head and "cluster/start-worker.sh $RAY_HEAD_IP:6379" in worker
    modes = {cmd.split("RAY_AUTH_MODE=")[1].split()[0] for cmd in (head, worker)}
    assert len(modes) == 1, f"head and workers must share one RAY_AUTH_MODE, got {modes}"
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_local_config_lists_head_and_worker_placeholders():
    provider = ray_up_config("local.yaml")["provider"]
    assert provider["type"] == "local" and provider["head_ip"] == "HEAD_IP"
    assert provider["worker_ips"] == ["WORKER_IP_1", "WORKER_IP_2"]


def test_aws_config_has_a_cpu_head_and_a_gpu_worker_type():
    config = ray_up_config("aws.yaml")
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["node_config"]["InstanceType"].startswith("m5")
    gpu = [t for t in types.values() if t["resources"].get("GPU")]
    assert gpu and gpu[0]["node_config"]["InstanceType"] == "g4dn.xlarge"


def test_kuberay_manifest_has_a_gpu_worker_group_and_one_auth_mode():
    docs = list(yaml.safe_load_all((CLUSTER / "kuberay.yaml").read_text()))
    (cluster,) = [d for d in docs if d["kind"] == "RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1"
    assert cluster["spec"]["rayVersion"].rsplit(".", 1)[0] == ray.__version__.rsplit(".", 1)[0]
    pods = [cluster["spec"]["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["spec"]["workerGroupSpecs"]]
    containers = [c for pod in pods for c in pod["containers"]]
    modes = {e["value"] for c in containers for e in c["env"] if e["name"] == "RAY_AUTH_MODE"}
    assert modes == {"token"} and all(
        any(e["name"] == "RAY_AUTH_MODE" for e in c["env"]) for c in containers)
    gpu_groups = [g for g in cluster["spec"]["workerGroupSpecs"]
                  if any("nvidia.com/gpu" in c["resources"]["limits"]
                         for c in g["template"]["spec"]["containers"])]
    assert gpu_groups
    assert all(any(m["mountPath"] == "/runs" for m in c["volumeMounts"]) for c in containers)


def run(*cmd: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *cmd], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **env})


@pytest.mark.parametrize("script", ["start-head.sh", "start-worker.sh"])
def test_scripts_parse_and_print_help(script):
    assert run("-n", str(CLUSTER / script)).returncode == 0
    done = run(str(CLUSTER / script), "--help")
    assert done.returncode == 0 and "RAY_AUTH_MODE" in done.stdout


def test_worker_script_without_head_address_prints_usage_and_fails():
    done = run(str(CLUSTER / "start-worker.sh"))
    assert done.returncode == 2
    assert "missing HEAD_ADDRESS" in done.stderr and "start-worker.sh HEAD_ADDRESS" in done.stderr
    done = run(str(CLUSTER / "start-worker.sh"), "not-an-address")
    assert done.returncode == 2 and "host:port" in done.stderr


def test_scripts_refuse_an_unknown_auth_mode_or_a_missing_token():
    done = run(str(CLUSTER / "start-head.sh"), RAY_AUTH_MODE="tokn")
    assert done.returncode == 2 and "RAY_AUTH_MODE" in done.stderr
    done = run(str(CLUSTER / "start-worker.sh"), "127.0.0.1:6379", RAY_AUTH_MODE="token")
    assert done.returncode == 2 and "auth_token" in done.stderr  # HOME has no token
