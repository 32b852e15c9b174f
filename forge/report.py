"""`forge report RUN`: a markdown summary of a run (phases, adoption, key metrics, models)."""
from __future__ import annotations

import json
from pathlib import Path

from forge.registry import RegistryStore


def report_markdown(store: RegistryStore, run_id: str) -> str:
    """Per phase: status, whether its model was adopted and why, its key metric; then models."""
    run = store.get_run(run_id)
    lines = [f"# Run {run_id}", "", f"- name: {run['name']}", f"- status: {run['status']}", "",
             "## Phases", "", "| phase | attempt | status | adopted | key metric | note |",
             "|---|---|---|---|---|---|"]
    for phase, row in store.latest_phases(run_id).items():
        s = json.loads(row["summary"] or "{}")
        metric = f"{s['key_metric'][0]} = {s['key_metric'][1]:.4g}" if s.get("key_metric") else "-"
        adopted = {True: "yes", False: "no"}.get(s.get("adopted"), "-")
        note = (row["error"] or s.get("reason") or "").replace("|", "/")
        lines.append(f"| {phase} | {row['attempt']} | {row['status']} | {adopted} | {metric} | {note} |")
    plots = [(phase, json.loads(row["summary"] or "{}").get("details", {}).get("plot"))
             for phase, row in store.latest_phases(run_id).items()]
    for phase, plot in plots:
        if plot:  # relative to the run directory, where report.md is written
            lines += ["", f"![{phase}]({plot})"]
    lines += specialist_lines(store, run_id)
    lines += ["", "## Models", "", "| id | params | bytes | parents |", "|---|---|---|---|"]
    for m in store.list_models(run_id):
        parents = ", ".join(f"{p['parent']} ({p['method']})" for p in store.parents(m["id"])) or "-"
        lines.append(f"| {m['id']} | {m['params']:,} | {m['bytes']:,} | {parents} |")
    return "\n".join(lines) + "\n"


def specialist_lines(store: RegistryStore, run_id: str) -> list[str]:
    """Phase 1's specialists: does each read its prompt (prompt-swap gain, forge.eval.context),
    its validation answer bits per byte, and exact match per task with the 95% interval."""
    row = store.latest_phases(run_id).get("cognate")
    models = json.loads(row["summary"] or "{}").get("details", {}).get("models") if row else None
    if not models:
        return []
    lines = ["", "## Phase 1 specialists (validation)", "",
             "| model | prompt-swap gain (bits/answer byte) | answer bits/byte | exact match per task |",
             "|---|---|---|---|"]
    for name, m in sorted(models.items()):
        gain = m.get("context/prompt_swap_gain")
        gain_text = "-" if gain is None else f"{gain:+.3f} +- {m['context/prompt_swap_stderr']:.3f}"
        tasks = sorted({k.split("/")[1] for k in m if k.startswith("task/") and k.endswith("/n")})
        em = ", ".join(f"{t} {m[f'task/{t}/exact_match']:.0%} [{m[f'task/{t}/exact_match_low']:.0%}, "
                       f"{m[f'task/{t}/exact_match_high']:.0%}] n={int(m[f'task/{t}/n'])}"
                       for t in tasks)
        lines.append(f"| {name} | {gain_text} | {m.get('tasks/answer_bits_per_byte', float('nan')):.3f} "
                     f"| {em} |")
    return lines


def write_report(store: RegistryStore, run_id: str, runs_dir: Path) -> Path:
    path = Path(runs_dir) / run_id / "report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_markdown(store, run_id))
    return path
