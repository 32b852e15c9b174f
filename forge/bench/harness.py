"""Run a benchmark module, summarise its repetitions, and write docs/results/<name>.{json,md}."""
from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import statistics
from pathlib import Path
from types import ModuleType
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parents[2] / "docs" / "results"


def machine() -> dict[str, Any]:
    """The facts that make a measurement comparable: cores, memory, versions, device."""
    import psutil
    import torch

    info = {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
    }
    try:
        from importlib.metadata import version
        info["ray"] = version("ray")
    except Exception as err:  # ray missing is recorded, not fatal, for pure benchmarks
        info["ray"] = f"unavailable ({err.__class__.__name__})"
    return info


# Every benchmark by name. Those of pure code live in forge/bench; those that need Ray in
# actors/bench (the library itself never imports Ray). Adding one: write it, list it here.
BENCHMARKS = {
    "registry": "forge.bench.registry", "data": "forge.bench.data", "model": "forge.bench.model",
    "cognate_vs_plain": "forge.bench.cognate_vs_plain", "merge": "forge.bench.merge",
    "bitnet": "forge.bench.bitnet", "quiet_star": "forge.bench.quiet_star",
    "quiet_star_chain_sum": "forge.bench.quiet_star_chain_sum",
    "phase1": "actors.bench.phase1", "evomerge": "actors.bench.evomerge",
    "default_run": "actors.bench.default_run", "faults": "actors.bench.faults",
    "kv_cache": "actors.bench.kv_cache", "serve": "actors.bench.serve",
    "cluster": "actors.bench.cluster",
}


def load_benchmark(name: str) -> ModuleType:
    """Import the benchmark module `name`; a name with no module raises `ValueError`."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; available: {', '.join(available())}")
    module = importlib.import_module(BENCHMARKS[name])
    if not hasattr(module, "measure"):
        raise ValueError(f"{BENCHMARKS[name]} has no measure(quick) function")
    return module


def available() -> list[str]:
    """Names of the benchmarks."""
    return sorted(BENCHMARKS)


def summarise(runs: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Median, min and max of each metric over the repetitions."""
    names = list(dict.fromkeys(k for r in runs for k in r))
    out = {}
    for n in names:
        values = [float(r[n]) for r in runs if n in r]
        out[n] = {"median": statistics.median(values), "min": min(values), "max": max(values),
                  "values": values}
    return out


def markdown(name: str, result: dict[str, Any]) -> str:
    """A short markdown page: the table, the facts, the machine."""
    units = result.get("units", {})
    lines = [f"# Benchmark `{name}`", "",
             f"Measured {result['when']} with `python -m forge.bench {name}"
             f"{' --quick' if result['quick'] else ''}` ({result['repeats']} repetitions).", "",
             "| metric | unit | median | min | max |", "|---|---|---|---|---|"]
    for metric, s in result["metrics"].items():
        lines.append(f"| {metric} | {units.get(metric, '')} | {s['median']:.4g} | {s['min']:.4g} "
                     f"| {s['max']:.4g} |")
    if result.get("facts"):
        lines += ["", "Facts:", ""] + [f"- {k}: {v}" for k, v in result["facts"].items()]
    lines += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in result["machine"].items()), ""]
    return "\n".join(lines)


def run(name: str, quick: bool = False, repeats: int | None = None,
        out_dir: Path | None = None) -> dict[str, Any]:
    """Run benchmark `name`, write its JSON and markdown, and return the result."""
    module = load_benchmark(name)
    facts = module.setup(quick) if hasattr(module, "setup") else {}
    n = repeats or getattr(module, "REPEATS", 3)
    runs = [module.measure(quick) for _ in range(n)]
    if hasattr(module, "facts"):  # what only the measurement knows (e.g. random kill moments)
        facts.update(module.facts())
    result = {"name": name, "quick": quick, "repeats": n,
              "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "units": getattr(module, "UNITS", {}), "metrics": summarise(runs), "facts": facts,
              "machine": machine()}
    out_dir = Path(out_dir or RESULTS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (out_dir / f"{name}.md").write_text(markdown(name, result))
    return result
