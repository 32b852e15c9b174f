"""Who drives a run: `runs/<run>/session.json` records the dashboard and the driver process, so
`forge monitor` can tell a run whose driver died (kill -9, a closed terminal) from one going on.
"""
from __future__ import annotations

import os
import socket

import psutil

SESSION_FILE = "session.json"


def session_record(dashboard_url: str | None) -> dict:
    """What the driver writes when it starts (or resumes) a run."""
    return {"dashboard_url": dashboard_url,
            "driver": {"host": socket.gethostname(), "pid": os.getpid(),
                       "started": psutil.Process().create_time()}}


def driver_gone(session: dict) -> str | None:
    """Why the recorded driver is certainly not running (on this host: no such process, or its
    pid now belongs to a later process); None when it runs or cannot be told from here."""
    driver = session.get("driver") or {}
    if driver.get("host") != socket.gethostname() or "pid" not in driver:
        return None
    try:
        started = psutil.Process(driver["pid"]).create_time()
    except psutil.NoSuchProcess:
        return f"its driver (pid {driver['pid']}) is not running"
    except psutil.Error:
        return None
    if abs(started - driver.get("started", started)) > 1.0:
        return f"its driver (pid {driver['pid']}) is not running (the pid was reused)"
    return None
