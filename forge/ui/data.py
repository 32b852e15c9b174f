"""What the dashboard shows, read from the registry (read-only) and the run storage.

Pure functions over a `RegistryStore` and a `RunStorage`, so the pages stay layout only and the
numbers are tested without a browser. Nothing here writes to the registry or to the runs.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from forge.console import human_bytes
from forge.pipeline.progress import read_progress
from forge.registry import RegistryError, RegistryStore
from forge.registry.snapshot import restore_registry
from forge.storage import RunStorage, masked

FINISHED = ("done", "not_adopted")
NONE = "—"  # an empty cell ("-" would render as a markdown bullet)


@dataclass
class RunsView:
    """One runs location opened for reading: its storage and its registry (read-only)."""

    runs_dir: str
    storage: RunStorage
    store: RegistryStore

    @classmethod
    def open(cls, runs_dir: str) -> "RunsView":
        """Open like `forge status` does (a URI's registry restored from its snapshot when this
        machine has none); raises RegistryError when there is no registry yet."""
        storage = RunStorage(runs_dir)
        restore_registry(storage)
        if not storage.registry_path.is_file():
            raise RegistryError(f"no runs in {masked(runs_dir)} yet (no {storage.registry_path.name})")
        return cls(runs_dir, storage, RegistryStore(storage.registry_path, readonly=True))

    @property
    def display(self) -> str:
        return masked(self.runs_dir)

    def close(self) -> None:
        self.store.close()


def when(stamp: float | None) -> str:
    """A registry time stamp as local 'YYYY-MM-DD HH:MM:SS' ('-' when unset)."""
    return dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S") if stamp else NONE


def wall(started: float | None, ended: float | None, now: float | None = None) -> str:
    """Seconds from start to end (to `now` while still going) as '12.3 s' / '4.5 min'."""
    if not started:
        return NONE
    seconds = (ended or now or dt.datetime.now().timestamp()) - started
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def plan_of(run: dict) -> list[str]:
    """The phases a run was asked to run, in order, from its saved config."""
    try:
        return list(yaml.safe_load(run["config"])["pipeline"]["phases"])
    except (yaml.YAMLError, KeyError, TypeError):
        return []


def run_rows(store: RegistryStore) -> list[dict]:
    """One row per run, newest first: id, name, status, started, wall time, phases done."""
    rows = []
    for run in store.list_runs():
        latest = store.latest_phases(run["id"])
        done = sum(r["status"] in FINISHED for r in latest.values())
        rows.append({"run": run["id"], "name": run["name"], "status": run["status"],
                     "started": when(run["created"]), "wall time": wall(run["created"], run["ended"]),
                     "phases done": f"{done}/{len(plan_of(run)) or len(latest)}"})
    return rows


def summary_of(row: dict | None) -> dict:
    try:
        return json.loads((row or {}).get("summary") or "{}")
    except json.JSONDecodeError:
        return {}


def key_metric_text(summary: dict) -> str:
    key = summary.get("key_metric")
    return f"{key[0]} = {key[1]:.4g}" if key and key[1] is not None else NONE


def phase_rows(view: RunsView, run_id: str) -> list[dict]:
    """The phase grid of one run: every planned phase (pending ones too) with its newest
    attempt's status, adoption, key metric, size, and live progress (fraction, text) while
    it runs."""
    run = view.store.get_run(run_id)
    latest = view.store.latest_phases(run_id)
    progress = read_progress(view.storage, run_id) if run["status"] == "running" else None
    rows = []
    for phase in plan_of(run) + [p for p in latest if p not in plan_of(run)]:
        row = latest.get(phase)
        summary = summary_of(row)
        status = row["status"] if row else "pending"
        adopted = {"done": "yes", "not_adopted": "no"}.get(status, NONE)
        fraction, text = {"done": (1.0, "finished"), "not_adopted": (1.0, "finished, not adopted")
                          }.get(status, (0.0, status))
        if status == "running" and progress and progress["phase"] == phase and progress["total"]:
            fraction = min(1.0, progress["done"] / progress["total"])
            text = f"{progress['done']}/{progress['total']} {progress.get('note', '')}".rstrip()
        rows.append({"phase": phase, "status": status, "adopted": adopted,
                     "attempt": str(row["attempt"]) if row else NONE,
                     "key metric": key_metric_text(summary),
                     "size": human_bytes(summary["size_bytes"]) if summary.get("size_bytes") else NONE,
                     "wall time": wall(row["started"], row["ended"]) if row else NONE,
                     "progress": fraction, "progress text": text})
    return rows


def metric_curves(store: RegistryStore, run_id: str, phase: str) -> dict[str, dict[str, dict]]:
    """Metrics logged at more than one step, as {name: {model or '(phase)': {step: value}}}:
    what the phase page draws as curves (loss, lr, tokens/s, fitness, diversity, ...)."""
    series: dict[str, dict[str, dict]] = {}
    for m in store.metrics(run_id, phase):
        series.setdefault(m["name"], {}).setdefault(m["model"] or "(phase)", {})[m["step"]] = m["value"]
    return {name: by_model for name, by_model in sorted(series.items())
            if max(len(points) for points in by_model.values()) > 1}


def final_metrics(store: RegistryStore, run_id: str, phase: str) -> list[dict]:
    """The last value of every metric of a phase, per model: the numbers behind its gate."""
    last: dict[tuple[str, str], dict] = {}
    for m in store.metrics(run_id, phase):
        last[(m["model"], m["name"])] = m  # ordered by step: the newest wins
    return [{"model": model or "(phase)", "metric": name, "step": m["step"],
             "value": "NaN" if m["value"] is None else f"{m['value']:.6g}"}
            for (model, name), m in sorted(last.items())]


def flat_numbers(details: dict, prefix: str = "") -> dict[str, float]:
    """Every number in a phase summary's nested `details`, keyed by its dotted path."""
    out: dict[str, float] = {}
    for key, value in details.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_numbers(value, path + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[path] = float(value)
    return out


def gate_decision(row: dict | None) -> dict:
    """How the phase's gate decided: adopted or not, its reason, the key metric, the error of a
    failed attempt, and the numbers the phase reported."""
    summary = summary_of(row)
    status = (row or {}).get("status", "pending")
    verdict = {"done": "adopted", "not_adopted": "not adopted (its input was handed on)",
               "failed": "failed"}.get(status, status)
    numbers = flat_numbers(summary.get("details") or {})
    headline = {k: v for k, v in numbers.items() if "." not in k or k.startswith("gate.")}
    return {"status": status, "verdict": verdict, "reason": summary.get("reason") or "",
            "error": (row or {}).get("error") or "", "key metric": key_metric_text(summary),
            "headline": headline, "numbers": numbers}


def phase_plots(storage: RunStorage, run_id: str, phase: str) -> list[Path]:
    """PNG plots a phase wrote in its directory or one level down (e.g. evomerge/fitness.png),
    pulled onto this machine."""
    found = []
    base = f"{run_id}/{phase}"
    for name in storage.listdir(base):
        rel = f"{base}/{name}"
        if name.endswith(".png"):
            found.append(storage.pull(rel))
        elif "." not in name:
            found += [storage.pull(f"{rel}/{n}") for n in storage.listdir(rel) if n.endswith(".png")]
    return found


def wandb_runs(storage: RunStorage, run_id: str, phase: str) -> list[str]:
    """Where a phase's W&B offline runs are on this machine (`wandb sync DIR` uploads one; from
    a URI storage they are pulled here first): the offline-run directories whose records name
    the W&B run `<run_id>-<phase>` (a protobuf string: its length byte, then the name, so a
    phase whose name is a prefix of another's never matches)."""
    name = f"{run_id}-{phase}".encode()
    needle = bytes([len(name)]) + name if len(name) < 128 else name  # one-byte varint length
    base = f"{run_id}/wandb"
    found = []
    for entry in storage.listdir(base):
        if not entry.startswith(("offline-run-", "run-")):
            continue
        for file in storage.listdir(f"{base}/{entry}"):
            if file.endswith(".wandb") and needle in storage.pull(f"{base}/{entry}/{file}").read_bytes():
                found.append(str(storage.pull(f"{base}/{entry}")))
    return found


def filter_models(models: list[dict], run: str = "", phase: str = "", text: str = "",
                  max_bytes: int | None = None) -> list[dict]:
    """Models matching every filter given: run and phase exactly, `text` anywhere in the id,
    at most `max_bytes` on disk."""
    text = text.strip().lower()
    return [m for m in models if (not run or m["run"] == run) and (not phase or m["phase"] == phase)
            and (not text or text in m["id"].lower())
            and (max_bytes is None or m["bytes"] <= max_bytes)]


def lineage_edges(store: RegistryStore, model_id: str, limit: int = 500) -> list[tuple[str, str, str]]:
    """Every (parent, child, method) edge in a model's ancestry, merges (several parents) included,
    each once, nearest first."""
    edges, seen, queue = [], {model_id}, [model_id]
    while queue and len(edges) < limit:
        child = queue.pop(0)
        for edge in store.parents(child):
            edges.append((edge["parent"], child, edge["method"]))
            if edge["parent"] not in seen:
                seen.add(edge["parent"])
                queue.append(edge["parent"])
    return edges


def lineage_dot(edges: list[tuple[str, str, str]], focus: str) -> str:
    """Graphviz DOT of the lineage (parents above children); the chosen model highlighted."""
    def q(text: str) -> str:
        return json.dumps(text)
    lines = ["digraph lineage {", "rankdir=TB;", 'node [shape=box, fontname="Helvetica"];',
             f"{q(focus)} [style=filled, fillcolor=\"#ffd27f\"];"]
    lines += [f"{q(p)} -> {q(c)} [label={q(m)}];" for p, c, m in edges]
    return "\n".join(lines + ["}"])


def manifest_of(storage: RunStorage, model: dict) -> dict | None:
    path = storage.pull(f"{model['path']}/manifest.json")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def artifact_zip(storage: RunStorage, model: dict) -> bytes:
    """The model's artifact directory as a zip (files under `<name>/`), built in memory."""
    root = storage.pull(model["path"])
    if not root.is_dir():
        raise FileNotFoundError(f"artifact of {model['id']} not found at {masked(storage.uri(model['path']))}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            archive.write(file, f"{root.name}/{file.relative_to(root).as_posix()}")
    return buffer.getvalue()


def model_commands(storage: RunStorage, model: dict) -> dict[str, str]:
    """The exact commands that evaluate and serve this model from this machine."""
    path = storage.local(model["path"])
    return {"eval": f"forge eval {path}", "serve": f"forge serve {path}",
            "show": f"forge show {model['id']} --runs-dir {storage.display}"}
