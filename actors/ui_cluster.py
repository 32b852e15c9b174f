"""The dashboard's view of a running Ray cluster: nodes and their load, and Ray Job submission.

Everything goes through the Ray dashboard's HTTP address (the state API, the node summary that
each node's reporter agent fills with psutil readings, `JobSubmissionClient`), so `forge ui`
never becomes a Ray driver and never starts a cluster. Implements `forge.ui.system.Cluster`.
"""
from __future__ import annotations

import json
import tempfile
import urllib.request
from pathlib import Path

from ray._private.authentication.http_token_authentication import get_auth_headers_if_auth_enabled
from ray.job_submission import JobSubmissionClient
from ray.util.state import list_nodes

from forge.ui.configs import EDITED_NAME, job_entrypoint


def _get_json(url: str, timeout: float) -> dict:
    request = urllib.request.Request(url, headers=get_auth_headers_if_auth_enabled({}))
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (our URL)
        return json.loads(response.read())


class RayCluster:
    """A cluster found at a dashboard URL (http://host:8265)."""

    def __init__(self, dashboard_url: str, timeout: float = 5.0):
        self.dashboard_url = dashboard_url.rstrip("/")
        self.timeout = timeout

    @classmethod
    def find(cls, candidates: list[str], timeout: float = 1.0) -> "RayCluster | None":
        """The first candidate dashboard that answers, else None (no cluster is up)."""
        for url in dict.fromkeys(u.rstrip("/") for u in candidates if u):
            try:
                _get_json(f"{url}/api/version", timeout)
            except (OSError, ValueError):
                continue
            return cls(url)
        return None

    def nodes(self) -> list[dict]:
        """Every node the state API lists, with the CPU/memory/disk/GPU readings of its
        reporter agent (forge.ui.system's shape; None where a node reports nothing)."""
        summary = _get_json(f"{self.dashboard_url}/nodes?view=summary", self.timeout)
        readings = {s.get("raylet", {}).get("nodeId"): s for s in summary["data"]["summary"]}
        nodes = list_nodes(address=self.dashboard_url, timeout=int(self.timeout), detail=True)
        return [node_reading(n, readings.get(n.node_id, {})) for n in nodes]

    def submit(self, yaml_text: str, runs_dir: str) -> str:
        """Run the YAML as a Ray Job: `python -m forge.submit` in a working directory holding
        only the YAML (Ray uploads it), writing into this dashboard's runs location."""
        client = JobSubmissionClient(self.dashboard_url)
        with tempfile.TemporaryDirectory(prefix="forge-ui-job-") as tmp:
            (Path(tmp) / EDITED_NAME).write_text(yaml_text)
            return client.submit_job(entrypoint=job_entrypoint(runs_dir),
                                     runtime_env={"working_dir": tmp},
                                     metadata={"submitted_by": "forge ui"})

    def job_status(self, submission_id: str) -> str:
        return str(JobSubmissionClient(self.dashboard_url).get_job_status(submission_id))


def node_reading(node, stats: dict) -> dict:
    """One state-API node and its reporter-agent stats as a forge.ui.system reading."""
    mem = stats.get("mem") or [None, None, None, None]  # psutil: total, available, percent, used
    disk = (stats.get("disk") or {}).get("/") or {}
    disk_total, disk_used = _disk(disk)
    gpus = [{"name": g.get("name", "GPU"), "util_percent": g.get("utilizationGpu"),
             "mem_used": _mib(g.get("memoryUsed")), "mem_total": _mib(g.get("memoryTotal"))}
            for g in stats.get("gpus") or []]
    cpus = stats.get("cpus") or [node.resources_total.get("CPU", 0)]
    return {"node": node.node_name or node.node_id[:12], "ip": node.node_ip, "state": node.state,
            "cpu_percent": stats.get("cpu"), "cpus": int(cpus[0] or 0),
            "mem_used": None if mem[0] is None else int(mem[0] - mem[1]), "mem_total": mem[0],
            "disk_used": disk_used, "disk_total": disk_total, "gpus": gpus}


def _disk(disk) -> tuple[int | None, int | None]:
    if isinstance(disk, dict):
        return disk.get("total"), disk.get("used")
    return (disk[0], disk[1]) if len(disk) >= 2 else (None, None)  # psutil sdiskusage as a list


def _mib(value) -> int | None:
    return None if value is None else int(value) * 1024**2
