"""Finding or starting the Ray cluster a run uses (DESIGN.md section 1, RAY_NOTES.md)."""
from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import ray

from forge.config.sections import RayConfig

AUTH_HINT = ("the cluster did not start our actor: most often RAY_AUTH_MODE differs between this "
             "driver ({mode}) and the cluster; export the same RAY_AUTH_MODE the cluster was "
             "started with (see docs/cluster.md)")


LOOPBACK = "127.0.0.1"
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": this node's address is 127.0.0.1


class ClusterError(RuntimeError):
    """Ray could not be reached or would not run our actors; the message says what to do."""


@dataclass
class RaySession:
    """A connection to Ray; `owns_cluster` when this process started it and must stop it."""

    owns_cluster: bool
    dashboard_url: str | None
    connected_here: bool = True  # False when the caller had already called ray.init

    def registry(self, handle, timeout: float = 60.0):
        """Wait for the registry actor to answer; a start-up failure becomes a ClusterError."""
        try:
            ray.get(handle.ping.remote(), timeout=timeout)
        except (ray.exceptions.ActorDiedError, ray.exceptions.ActorUnavailableError) as err:
            raise ClusterError(AUTH_HINT.format(mode=os.environ.get("RAY_AUTH_MODE", "unset"))) from err
        except ray.exceptions.GetTimeoutError as err:
            raise ClusterError(f"the registry actor did not start within {timeout:.0f}s: "
                               "the cluster may lack a head node with free resources") from err
        return handle

    def job_id(self) -> str | None:
        """The Ray job of this driver, and the submission id when run by `ray job submit`."""
        job = ray.get_runtime_context().get_job_id()
        submission = submission_id(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR"))
        return f"{job} (submission {submission})" if submission else job

    def close(self) -> None:
        if self.connected_here:
            ray.shutdown()


def resolve_address(explicit: str | None, configured: str | None) -> str | None:
    """--address, then config, then RAY_ADDRESS, else None (meaning: auto, then local).
    The address 'local' always starts a new local Ray."""
    return explicit or configured or os.environ.get("RAY_ADDRESS") or None


def connect(cfg: RayConfig, explicit_address: str | None = None) -> RaySession:
    """Connect to the resolved address, or a running local cluster, else start a local Ray."""
    if ray.is_initialized():  # embedded use (tests, notebooks): keep the caller's connection
        return RaySession(False, _dashboard(ray.get_runtime_context()), connected_here=False)
    address = resolve_address(explicit_address, cfg.address)
    common = {"namespace": cfg.namespace, "log_to_driver": False}
    if address == "local":  # always a fresh local Ray, even when another cluster is running
        return _start_local(cfg, common)
    if address:
        check_reachable(address, cfg.connect_timeout_s)
        try:
            ctx = ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ClusterError(f"cannot connect to Ray at {address}: {err}") from err
        return RaySession(False, _dashboard(ctx))
    try:
        ctx = ray.init(address="auto", **common)
        return RaySession(False, _dashboard(ctx))
    except (ConnectionError, RuntimeError):
        pass  # no running cluster: start our own below
    return _start_local(cfg, common)


def submission_id(job_config_json: str | None) -> str | None:
    """The `ray job submit` id, which the job server passes in its job-config env variable."""
    try:
        return json.loads(job_config_json or "{}").get("metadata", {}).get("job_submission_id")
    except (json.JSONDecodeError, AttributeError):
        return None


def check_reachable(address: str, timeout_s: float) -> None:
    """Fail fast, in one line, when a host:port address does not accept connections (ray.init
    would otherwise retry for minutes). Other forms (ray://, auto) are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in address or address == "auto":
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ClusterError(f"--address {address}: nothing answers there ({err.strerror or err}); "
                           "is `ray start --head` running?") from err


def _start_local(cfg: RayConfig, common: dict) -> RaySession:
    """A single-machine Ray that listens on 127.0.0.1 only (GCS, raylet, workers, agents)."""
    loopback_only()
    ctx = ray.init(address="local", num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus,
                   include_dashboard=cfg.include_dashboard, _node_ip_address=LOOPBACK,
                   object_store_memory=cfg.object_store_mb * 1024**2, **common)
    tighten_auth_token()
    return RaySession(True, _dashboard(ctx))


def loopback_only() -> None:
    """Make the Ray this process starts take 127.0.0.1 as the node address. On Linux Ray rewrites
    a loopback `_node_ip_address` to the LAN address, and its agents bind that address (the job
    agent answers unauthenticated there with RAY_AUTH_MODE=disabled); unless told, as on macOS,
    that this machine is not part of a cluster. Ray reads the switch at import (the constant,
    this process) and in its child processes (the variable). A cluster meant to be reached from
    other machines is started on purpose: `ray start --head --node-ip-address ...`
    (docs/cluster.md)."""
    from ray._private import ray_constants

    os.environ[LOCAL_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def tighten_auth_token(path: Path | None = None) -> None:
    """Ray creates `~/.ray/auth_token` readable by every user (0644): make it owner-only."""
    path = path or Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        if path.is_file() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except OSError as err:  # someone else's file: say so, the run itself is not affected
        print(f"warning: {path} is readable by other users and could not be tightened: "
              f"{err.strerror}", file=sys.stderr)


def _dashboard(ctx) -> str | None:
    url = getattr(ctx, "dashboard_url", None) or None
    if not url:
        return None
    return url if url.startswith("http") else f"http://{url}"
