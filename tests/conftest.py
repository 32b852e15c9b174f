"""One Ray instance for the whole session (RAY_NOTES.md), started only if a test needs it."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# Before Ray is imported anywhere: one auth mode everywhere, no usage reporting, no W&B prompts.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with 2 CPUs and one logical GPU, shared by every Ray test."""
    import ray
    from ray import cloudpickle

    import tests.fixture_phases as fixture_phases

    cloudpickle.register_pickle_by_value(fixture_phases)  # workers cannot import tests/
    # Ray workers mirror URI run storage here, not in ~/.cache/forge (they inherit this env).
    worker_cache = tempfile.mkdtemp(prefix="forge-worker-cache-")
    os.environ["FORGE_CACHE_DIR"] = worker_cache
    # Bound to loopback: tests never talk to another address (subprocess drivers connect here).
    # address="local": a fresh Ray even when another cluster on this machine is recorded in
    # /tmp/ray/ray_current_cluster (ray.init() would join it and refuse num_cpus).
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
             object_store_memory=75 * 1024**2, namespace="test", _node_ip_address="127.0.0.1")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    shutil.rmtree(worker_cache, ignore_errors=True)


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return tmp_path / "runs"


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread in the test process: on a busy 2-core machine OpenMP threads stall far
    more than one thread runs slower (Ray actors set their own thread counts)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cognate_config(defaults: dict, **overrides):
    """A `CognateConfig` from a test folder's tiny defaults plus overrides."""
    from forge.models import CognateConfig

    return CognateConfig(**{**defaults, **overrides})
