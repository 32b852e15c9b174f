"""Registry write throughput of the sqlite store (WAL, synchronous=NORMAL), without Ray.

One metric row per transaction (how a trainer logs a step) and many rows in one transaction
(how a phase logs an evaluation table).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from forge.registry import RegistryStore

UNITS = {"direct_writes_per_s": "rows/s", "batched_rows_per_s": "rows/s"}
REPEATS = 3


def measure(quick: bool) -> dict[str, float]:
    n = 200 if quick else 2000
    with tempfile.TemporaryDirectory() as tmp:
        store = RegistryStore(Path(tmp) / "registry.db")
        store.create_run("r", "bench", "")
        start = time.perf_counter()
        for step in range(n):
            store.log_metrics("r", "p", step, {"loss": 1.0})
        one_by_one = n / (time.perf_counter() - start)
        start = time.perf_counter()
        store.log_metrics("r", "q", 0, {f"m{i}": float(i) for i in range(n)})
        batched = n / (time.perf_counter() - start)
        assert len(store.metrics("r")) == 2 * n  # measured writes really landed
        store.close()
    return {"direct_writes_per_s": one_by_one, "batched_rows_per_s": batched}


def setup(quick: bool) -> dict:
    return {"rows_per_repetition": 200 if quick else 2000, "journal_mode": "WAL",
            "synchronous": "NORMAL"}
