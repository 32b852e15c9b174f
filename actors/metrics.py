"""Prometheus gauges of a running pipeline (`ray.util.metrics`), for users who scrape Ray.

Ray exports application metrics from every node's metrics agent in Prometheus format (the port
in `ray start --metrics-export-port`, listed in /tmp/ray/session_latest/metrics_export_port);
names get Ray's `ray_` prefix. docs/ui.md lists them:

    forge_phase_progress{run, phase}          fraction of the running phase done, 0..1
    forge_loss{run, phase, model}             last training loss a phase logged
    forge_tokens_per_second{run, phase, model} last training throughput a phase logged

Progress is set by the driver as it polls each PhaseActor; loss and tokens/s by the
RegistryActor, which sees every metric row any actor writes.
"""
from __future__ import annotations

import functools
import logging
from functools import lru_cache
from typing import Callable

from ray.util.metrics import Gauge

logger = logging.getLogger(__name__)

# Registry metric names that count as "loss" and "tokens/s" (phases prefix them, e.g. train/loss).
LOSS_NAMES = ("loss", "train/loss")
RATE_NAMES = ("tokens_per_s", "train/tokens_per_s")


@lru_cache(maxsize=None)
def _gauge(name: str, description: str, tags: tuple[str, ...]) -> Gauge:
    """One Gauge object per process and name (Ray wants each metric defined once)."""
    return Gauge(name, description=description, tag_keys=tags)


def _best_effort(record: Callable) -> Callable:
    """A gauge that cannot be set (a metrics agent gone, a bad tag) never fails a run."""
    @functools.wraps(record)
    def wrapped(*args, **kwargs) -> None:
        try:
            record(*args, **kwargs)
        except Exception as err:  # noqa: BLE001
            logger.warning("forge gauge %s not set: %s", record.__name__, err)
    return wrapped


@_best_effort
def record_progress(run_id: str, phase: str, done: int, total: int) -> None:
    """Set forge_phase_progress for one phase of one run."""
    if total <= 0:
        return
    gauge = _gauge("forge_phase_progress", "fraction of the running phase done", ("run", "phase"))
    gauge.set(min(1.0, done / total), tags={"run": run_id, "phase": phase})


def gauge_values(values: dict[str, float]) -> dict[str, float]:
    """The loss and tokens/s among one metrics row, by gauge name (absent ones left out)."""
    found = {}
    for gauge, names in (("forge_loss", LOSS_NAMES), ("forge_tokens_per_second", RATE_NAMES)):
        for name in names:
            value = values.get(name)
            if value is not None and value == value:  # NaN is not a reading
                found[gauge] = float(value)
    return found


@_best_effort
def record_metrics(run_id: str, phase: str, model: str, values: dict[str, float]) -> None:
    """Set the loss and tokens/s gauges from one `log_metrics` call."""
    descriptions = {"forge_loss": "last training loss a phase logged",
                    "forge_tokens_per_second": "last training throughput, tokens per second"}
    for name, value in gauge_values(values).items():
        _gauge(name, descriptions[name], ("run", "phase", "model")).set(
            value, tags={"run": run_id, "phase": phase, "model": model or "-"})
