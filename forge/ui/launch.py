"""`forge ui [--runs-dir DIR] [--host 127.0.0.1] [--port 8501]`: start the dashboard.

Runs `streamlit run actors/ui_app.py` headless, with usage statistics off, bound to loopback
unless --host says otherwise. Bad arguments fail here in one line (exit 2), before Streamlit
starts.
"""
from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path

from forge.storage import RunStorage, StorageError, is_uri, masked

ENTRY = "actors.ui_app"  # the entry script: it wires in the Ray cluster finder (actors/)


class UiError(ValueError):
    """A `forge ui` argument that cannot be used; the message names it."""


def add_ui_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", default="runs", help="the runs directory or URI (default runs)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    p.add_argument("--ray-dashboard", default=None, metavar="URL",
                   help="the Ray dashboard of the cluster to monitor and submit to (default: "
                        "RAY_ADDRESS when it is http, the running runs' dashboards, "
                        "http://127.0.0.1:8265)")


def check_runs_dir(runs_dir: str) -> str:
    """The runs location as the app gets it: an existing directory (absolute) or a URI whose
    filesystem opens."""
    if is_uri(runs_dir):
        try:
            RunStorage(runs_dir).listdir("")
        except StorageError as err:
            raise UiError(f"--runs-dir {masked(runs_dir)}: {err}") from None
        return runs_dir
    path = Path(runs_dir)
    if not path.is_dir():
        raise UiError(f"--runs-dir {runs_dir}: no such directory (start a run first, or name "
                      "the runs directory of one)")
    return str(path.resolve())


def check_address(host: str, port: int) -> None:
    """The port must be a valid one and free on `host`."""
    if not 1 <= port <= 65535:
        raise UiError(f"--port {port}: allowed: 1-65535")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except socket.gaierror:
        raise UiError(f"--host {host}: not an address of this machine") from None
    except OSError as err:
        raise UiError(f"--port {port}: cannot listen on {host} ({err.strerror})") from None


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def streamlit_command(runs_dir: str, host: str, port: int,
                      ray_dashboard: str | None = None) -> list[str]:
    """The `streamlit run` command line: headless, no usage statistics, no file watcher."""
    script = importlib.util.find_spec(ENTRY).origin
    app_args = ["--runs-dir", runs_dir] + (["--ray-dashboard", ray_dashboard] if ray_dashboard else [])
    return [sys.executable, "-m", "streamlit", "run", script,
            "--server.headless=true", "--browser.gatherUsageStats=false",
            f"--server.address={host}", f"--server.port={port}",
            "--server.fileWatcherType=none", "--client.toolbarMode=viewer", "--", *app_args]


def run_ui(args: argparse.Namespace) -> int:
    """Check the arguments, then serve until interrupted; Streamlit's exit code."""
    runs_dir = check_runs_dir(args.runs_dir)
    check_address(args.host, args.port)
    if args.ray_dashboard and not args.ray_dashboard.startswith(("http://", "https://")):
        raise UiError(f"--ray-dashboard {args.ray_dashboard}: expected an http(s):// URL, e.g. "
                      "http://127.0.0.1:8265")
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}: anyone who can reach this machine can read "
              "the runs and submit jobs", file=sys.stderr)
    env = dict(os.environ, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    root = str(Path(__file__).resolve().parents[2])  # forge's and actors' parent, for the script
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    print(f"forge ui: http://{args.host}:{args.port} (runs in {masked(runs_dir)})", flush=True)
    try:
        return subprocess.call(streamlit_command(runs_dir, args.host, args.port, args.ray_dashboard),
                               env=env)
    except KeyboardInterrupt:
        return 0
