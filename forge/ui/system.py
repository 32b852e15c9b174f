"""System monitor data: this machine through psutil (and torch for GPUs), or every node of a
Ray cluster through a `Cluster` the Ray side provides (actors/ui_cluster.py).

All node readings share one shape, so the page draws a local machine and a cluster alike:
{node, ip, state, cpu_percent, cpus, mem_used, mem_total, disk_used, disk_total, gpus: [...]}
with bytes as integers and each GPU as {name, util_percent, mem_used, mem_total}.
"""
from __future__ import annotations

import socket
from typing import Protocol

import psutil


class Cluster(Protocol):
    """A running Ray cluster as the dashboard needs it (implemented in actors/ui_cluster.py)."""

    dashboard_url: str

    def nodes(self) -> list[dict]:
        """One reading per node, in the shape this module documents."""

    def submit(self, yaml_text: str, runs_dir: str) -> str:
        """Submit the YAML as a Ray Job running forge.submit; returns the submission id."""


def gpu_readings() -> list[dict]:
    """CUDA devices through torch (memory; utilisation too when NVML is there); an empty list
    on CPU machines."""
    import torch  # here, not at the top: seconds to import, and only this page needs it

    if not torch.cuda.is_available():
        return []
    readings = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        try:
            util = float(torch.cuda.utilization(index))  # needs NVML (pynvml)
        except Exception:  # noqa: BLE001  (no NVML: memory is still worth showing)
            util = None
        readings.append({"name": torch.cuda.get_device_name(index), "util_percent": util,
                         "mem_used": int(total - free), "mem_total": int(total)})
    return readings


def local_node(path: str = "/") -> dict:
    """This machine now: CPU over a short interval, memory, the disk holding `path`, GPUs."""
    mem, disk = psutil.virtual_memory(), psutil.disk_usage(path)
    return {"node": socket.gethostname(), "ip": "127.0.0.1", "state": "ALIVE (this machine)",
            "cpu_percent": psutil.cpu_percent(interval=0.2), "cpus": psutil.cpu_count() or 0,
            "mem_used": int(mem.total - mem.available), "mem_total": int(mem.total),
            "disk_used": int(disk.used), "disk_total": int(disk.total), "gpus": gpu_readings()}


def node_rows(nodes: list[dict]) -> list[dict]:
    """Readings as table rows with units a person reads (GiB, %)."""
    def gib(n) -> str:
        return f"{n / 1024**3:.1f} GiB" if n is not None else "—"

    def share(used, total) -> str:
        return f"{gib(used)} / {gib(total)} ({100 * used / total:.0f}%)" if used is not None and total else "—"
    rows = []
    for n in nodes:
        gpus = "; ".join(f"{g['name']}: {share(g['mem_used'], g['mem_total'])}"
                         + (f", {g['util_percent']:.0f}% busy" if g.get("util_percent") is not None else "")
                         for g in n.get("gpus") or []) or "none"
        cpu = f"{n['cpu_percent']:.0f}% of {n['cpus']}" if n.get("cpu_percent") is not None else "—"
        rows.append({"node": n["node"], "ip": n["ip"], "state": n["state"], "CPU": cpu,
                     "memory": share(n.get("mem_used"), n.get("mem_total")),
                     "disk": share(n.get("disk_used"), n.get("disk_total")), "GPU": gpus})
    return rows
