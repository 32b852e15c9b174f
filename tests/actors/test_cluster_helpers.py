"""Cluster helpers that need no running Ray: address order, reachability, job ids."""
import json
import socket

import pytest

from actors.cluster import ClusterError, check_reachable, resolve_address, submission_id


def test_address_resolution_order(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "env:1")
    assert resolve_address("cli:1", "cfg:1") == "cli:1"
    assert resolve_address(None, "cfg:1") == "cfg:1"
    assert resolve_address(None, None) == "env:1"
    monkeypatch.delenv("RAY_ADDRESS")
    assert resolve_address(None, None) is None


def test_unreachable_address_raises_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterError, match=f"--address 127.0.0.1:{port}: nothing answers there"):
        check_reachable(f"127.0.0.1:{port}", 1.0)
    check_reachable("auto", 1.0)  # left to Ray
    check_reachable("ray://somewhere:10001", 1.0)


def test_reachable_address_passes():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        check_reachable(f"127.0.0.1:{s.getsockname()[1]}", 1.0)


def test_submission_id_from_job_config():
    cfg = json.dumps({"runtime_env": {}, "metadata": {"job_submission_id": "raysubmit_x"}})
    assert submission_id(cfg) == "raysubmit_x"
    assert submission_id(None) is None and submission_id("not json") is None
