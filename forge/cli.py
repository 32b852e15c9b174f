"""The `forge` command: run, resume, status, monitor, models, show, rollback, report, gc, eval,
generate, serve, export, ui.

Everything but `run` and `resume` reads (or, for rollback and gc, edits) the registry file
directly, without Ray, so it works while a run is going and after the cluster is gone.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from forge.registry import RegistryError, RegistryStore, collect_garbage
from forge.registry.store import corrupt_registry
from forge.registry.snapshot import restore_registry
from forge.session import SESSION_FILE, driver_gone
from forge.storage import RunStorage, StorageError
from forge.ui.launch import add_ui_arguments, run_ui

# Piped output (CI logs, `| less`) gets wide tables instead of rich's 80-column default.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _store(runs_dir: str, readonly: bool = True) -> RegistryStore:
    """The registry of a runs location (for a URI: the one on this, the head, node, restored
    from the storage's snapshot when this machine has none). Never creates one: gc and
    rollback on a mistyped --runs-dir say so instead of leaving an empty registry there."""
    storage = RunStorage(runs_dir)
    restore_registry(storage)
    path = storage.registry_path
    if not path.is_file():
        raise RegistryError(f"no registry at {path} (is --runs-dir right?)")
    if not readonly and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        raise RegistryError(f"registry {path} is read-only; this command changes it")
    return RegistryStore(path, readonly=readonly)


def _runs_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", default="runs",
                   help="the runs directory or URI, as in run.runs_dir (default runs)")


def cmd_status(args) -> int:
    store = _store(args.runs_dir)
    if not args.run:
        table = Table(title=f"runs in {args.runs_dir}")
        for col in ("run", "name", "status", "phases done", "models"):
            table.add_column(col)
        for run in store.list_runs():
            done = sum(r["status"] in ("done", "not_adopted")
                       for r in store.latest_phases(run["id"]).values())
            table.add_row(run["id"], run["name"], _run_state(run, args.runs_dir), str(done),
                          str(store.count("models", run["id"])))
        console.print(table)
        return 0
    console.print(status_table(store, args.run))
    run = store.get_run(args.run)
    if _run_state(run, args.runs_dir) != run["status"]:
        console.print(f"run {args.run} was interrupted ({_run_state(run, args.runs_dir)}); "
                      f"continue with: forge resume {args.run} --runs-dir {args.runs_dir}")
    return 0


def _session(runs_dir: str, run_id: str) -> dict:
    """The run's session.json (dashboard, driver process); {} when it has none."""
    path = RunStorage(runs_dir).pull(f"{run_id}/{SESSION_FILE}")
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _run_state(run: dict, runs_dir: str) -> str:
    """The registry's status, unless it says running while the driver is gone."""
    gone = driver_gone(_session(runs_dir, run["id"])) if run["status"] == "running" else None
    return f"running, but {gone}" if gone else run["status"]


def status_table(store: RegistryStore, run_id: str) -> Table:
    """Phase-by-phase state of one run: attempt, status, wall time, metrics and errors."""
    run = store.get_run(run_id)
    table = Table(title=f"run {run_id} ({run['status']})")
    for col in ("phase", "attempt", "status", "wall time", "metric rows", "note"):
        table.add_column(col)
    counts: dict[str, int] = {}
    for m in store.metrics(run_id):
        counts[m["phase"]] = counts.get(m["phase"], 0) + 1
    for phase, row in store.latest_phases(run_id).items():
        wall = f"{row['ended'] - row['started']:.1f} s" if row["ended"] and row["started"] else "-"
        summary = json.loads(row["summary"] or "{}")
        note = row["error"] or summary.get("reason") or ""
        table.add_row(phase, str(row["attempt"]), row["status"], wall, str(counts.get(phase, 0)),
                      note[:80])
    return table


def cmd_monitor(args) -> int:
    import time

    from rich.live import Live

    store = _store(args.runs_dir)
    run_id = args.run or (store.list_runs() or [{"id": None}])[0]["id"]
    if run_id is None:
        raise RegistryError(f"no runs in {args.runs_dir}")
    session = _session(args.runs_dir, run_id)
    console.print(f"dashboard: {session.get('dashboard_url') or '(not recorded)'}")
    with Live(status_table(store, run_id), console=console, auto_refresh=False) as live:
        for _ in range(args.iterations or sys.maxsize):
            live.update(status_table(store, run_id), refresh=True)
            if store.get_run(run_id)["status"] != "running":
                break
            gone = driver_gone(session)
            if gone:  # nothing will change any more: say so instead of watching forever
                print(f"error: run {run_id} says running but {gone}; it was interrupted. "
                      f"Continue with: forge resume {run_id} --runs-dir {args.runs_dir}",
                      file=sys.stderr)
                return 1
            time.sleep(args.interval)
    return 0


def cmd_models(args) -> int:
    table = Table(title="models")
    for col in ("id", "params", "bytes", "sha256", "path"):
        table.add_column(col)
    store = _store(args.runs_dir)
    if args.run:
        store.get_run(args.run)  # an unknown run is an error, not an empty table
    for m in store.list_models(args.run, args.phase):
        table.add_row(m["id"], f"{m['params']:,}", f"{m['bytes']:,}", m["sha256"][:12], m["path"])
    console.print(table)
    return 0


def cmd_show(args) -> int:
    store = _store(args.runs_dir)
    model = store.get_model(args.model_id)
    manifest_path = RunStorage(args.runs_dir).pull(f"{model['path']}/manifest.json")
    console.print(f"model {model['id']}: {model['params']:,} parameters, {model['bytes']:,} bytes")
    if manifest_path.is_file():
        console.print_json(manifest_path.read_text())
    tree = Tree(f"lineage of {model['id']}")
    _add_lineage(tree, store.lineage_tree(model["id"]))
    console.print(tree)
    return 0


def _add_lineage(node: Tree, item: dict) -> None:
    for parent in item["parents"]:
        gone = ", not in the registry (removed)" if parent.get("removed") else ""
        _add_lineage(node.add(f"{parent['id']} ({parent['method']}{gone})"), parent)


def cmd_rollback(args) -> int:
    import yaml

    store = _store(args.runs_dir, readonly=False)
    run = store.get_run(args.run)
    plan = list(yaml.safe_load(run["config"])["pipeline"]["phases"])
    if args.to not in plan:
        raise RegistryError(f"--to {args.to!r}: not a phase of run {args.run} ({', '.join(plan)})")
    later = plan[plan.index(args.to) + 1:]
    for phase in later:
        store.mark_pending(args.run, phase)
    console.print(f"marked pending: {', '.join(later) or '(nothing after ' + args.to + ')'}; "
                  f"their artifacts stay until new ones pass. Continue with: "
                  f"forge resume {args.run} --runs-dir {args.runs_dir}")
    return 0


def cmd_report(args) -> int:
    from forge.report import write_report

    storage = RunStorage(args.runs_dir)
    path = write_report(_store(args.runs_dir), args.run, storage.local_root)
    storage.push(storage.rel(path))
    console.print(f"report written to {storage.uri(storage.rel(path))}")
    return 0


def cmd_gc(args) -> int:
    from forge.config import load

    policy = load(args.config).registry
    dropped = collect_garbage(_store(args.runs_dir, readonly=args.dry_run), args.runs_dir,
                              policy.keep_runs, policy.drop_failed_after_days, args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    console.print(f"{verb} {len(dropped)} run(s): {', '.join(dropped) or '-'}")
    return 0


def eval_main(argv: list[str]) -> int:
    from forge.eval.cli import add_eval_arguments, run_eval

    parser = argparse.ArgumentParser(prog="forge eval", description="Evaluate a saved model.")
    add_eval_arguments(parser)
    return run_eval(parser.parse_args(argv))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the pipeline (same as python -m forge.submit)", add_help=False)
    p = sub.add_parser("resume", help="continue a run from its first unfinished phase")
    p.add_argument("run")
    p.add_argument("--address", default=None)
    _runs_dir_arg(p)
    for name, func, run_arg in (("status", cmd_status, "?"), ("monitor", cmd_monitor, "?")):
        p = sub.add_parser(name, help=f"{name} of runs (read-only, no Ray)")
        p.add_argument("run", nargs=run_arg)
        _runs_dir_arg(p)
        p.set_defaults(func=func)
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--iterations", type=int, default=0, help="stop after N refreshes (0: until done)")
    p = sub.add_parser("models", help="list registered models")
    p.add_argument("--run")
    p.add_argument("--phase")
    _runs_dir_arg(p)
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("show", help="a model's manifest and lineage tree")
    p.add_argument("model_id")
    _runs_dir_arg(p)
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("rollback", help="mark the phases after --to as pending")
    p.add_argument("run")
    p.add_argument("--to", required=True)
    _runs_dir_arg(p)
    p.set_defaults(func=cmd_rollback)
    p = sub.add_parser("report", help="write a markdown report of a run")
    p.add_argument("run")
    _runs_dir_arg(p)
    p.set_defaults(func=cmd_report)
    sub.add_parser("eval", help="evaluate a saved model on held-out text and tasks (see forge eval -h)",
                   add_help=False)
    sub.add_parser("generate", help="generate from a model, thinking first (Quiet-STaR; see "
                                    "forge generate -h)", add_help=False)
    sub.add_parser("serve", help="serve a model with an OpenAI-compatible API on Ray Serve (see "
                                 "forge serve -h)", add_help=False)
    sub.add_parser("export", help="export a model as a Hugging Face folder (see forge export -h)",
                   add_help=False)
    p = sub.add_parser("gc", help="apply the clean-up policy of the config's registry section")
    p.add_argument("--config", default=None)
    p.add_argument("--dry-run", action="store_true")
    _runs_dir_arg(p)
    p.set_defaults(func=cmd_gc)
    p = sub.add_parser("ui", help="the web dashboard (Streamlit) over the runs, on 127.0.0.1:8501")
    add_ui_arguments(p)
    p.set_defaults(func=run_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from forge import submit

    if argv[:1] == ["run"]:
        return submit.main(argv[1:])
    if argv[:1] == ["eval"]:  # imported on demand: it pulls in torch, which status doesn't need
        return eval_main(argv[1:])
    if argv[:1] == ["generate"]:
        from forge.reasoning.cli import main as generate_main

        return generate_main(argv[1:])
    if argv[:1] in (["serve"], ["export"]):
        from forge.serve import cli as serve_cli

        return (serve_cli.serve_main if argv[0] == "serve" else serve_cli.export_main)(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "resume":
        extra = ["--address", args.address] if args.address else []
        return submit.main(["--resume", args.run, "--runs-dir", args.runs_dir] + extra)
    try:
        return args.func(args)
    except sqlite3.DatabaseError as err:  # pages damaged behind an intact header
        print(f"error: {corrupt_registry(RunStorage(args.runs_dir).registry_path, err)}",
              file=sys.stderr)
        return 2
    except (RegistryError, StorageError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
