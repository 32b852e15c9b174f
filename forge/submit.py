"""`python -m forge.submit`: validate the config, connect to Ray, run the plan, print a summary.

Cluster resolution (DESIGN.md section 1): --address, then RAY_ADDRESS, then a running local
cluster, else a local Ray started (and stopped) by this command. Exit codes: 0 ok, 1 a phase
failed, 2 bad input (nothing started, no run directory created).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import datetime as dt
import secrets
import sys
from pathlib import Path

from forge.config import ConfigError, PipelineConfig, dump, from_yaml_text, load
from forge.console import RunReporter
from forge.pipeline.inputs import InputModelError, InputSource, resolve_inputs, stage_inputs
from forge.pipeline.plan import select_phases
from forge.pipeline.registry import available_phases

CONFIG_FILE = "config.yaml"


class InputError(Exception):
    """Bad input found before any work starts (exit 2)."""


def build_parser(prog: str = "python -m forge.submit") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Run the Agent Forge pipeline on Ray.")
    p.add_argument("--config", default=None, help="pipeline YAML (default config/pipeline.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set phases.cognate.steps=50 (repeatable)")
    p.add_argument("--phases", default=None, help="subset 'a,b' or range 'a..b' of pipeline.phases")
    p.add_argument("--runs-dir", default=None, help="where runs and registry.db live (run.runs_dir)")
    p.add_argument("--resume", default=None, metavar="RUN_ID", help="continue an earlier run")
    p.add_argument("--input", action="append", default=[], metavar="MODEL",
                   help="start the first phase from this artifact dir or model id (repeatable; "
                        "same as pipeline.inputs)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (else RAY_ADDRESS, auto); 'local' starts a new local Ray")
    return p


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def resolve_config(args: argparse.Namespace) -> tuple[PipelineConfig, Path, str]:
    """The config, runs dir and run id this invocation uses; raises ConfigError/InputError."""
    if args.resume:
        if args.config or args.set or args.input:
            raise InputError("--resume uses the run's saved config; drop --config/--set/--input")
        runs_dir = Path(args.runs_dir or "runs")
        saved = runs_dir / args.resume / CONFIG_FILE
        if not saved.is_file():
            raise InputError(f"--resume {args.resume}: no run at {saved.parent}")
        return from_yaml_text(saved.read_text()), runs_dir, args.resume
    overrides = list(args.set)
    if args.input:
        overrides.append("pipeline.inputs=" + json.dumps(args.input))
    if args.runs_dir:
        overrides.append(f"run.runs_dir={args.runs_dir}")
    cfg = load(args.config, overrides)
    return cfg, Path(cfg.run.runs_dir), new_run_id()


def check_resources(cfg: PipelineConfig, plan: list[str], cluster: dict) -> None:
    """Every phase must fit the cluster: CPUs always, GPUs only where the cluster has some."""
    cpus, gpus = cluster.get("CPU", 0), cluster.get("GPU", 0)
    for name in plan:
        res = cfg.phase(name).resources
        if res.num_cpus > cpus:
            raise ConfigError(f"phases.{name}.resources.num_cpus: got {res.num_cpus}; allowed: "
                              f"at most the cluster's {cpus:g} CPUs")
        if gpus and res.num_gpus > gpus:
            raise ConfigError(f"phases.{name}.resources.num_gpus: got {res.num_gpus}; allowed: "
                              f"at most the cluster's {gpus:g} GPUs")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg, runs_dir, run_id = resolve_config(args)
        plan = select_phases(cfg.pipeline.phases, args.phases)
    except (ConfigError, InputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not plan:
        print("Nothing to run: pipeline.phases is empty. Phases available in this version: "
              f"{', '.join(available_phases()) or '(none yet)'}.")
        return 0
    if not args.resume:  # the saved config says what this run runs: resume follows the same plan
        cfg = dataclasses.replace(cfg, pipeline=dataclasses.replace(cfg.pipeline, phases=tuple(plan)))
    try:
        sources = [] if args.resume else resolve_inputs(cfg.pipeline.inputs, runs_dir)
    except InputModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return run_on_ray(cfg, runs_dir, run_id, plan, args.address, resume=bool(args.resume),
                      sources=sources)


def run_on_ray(cfg: PipelineConfig, runs_dir: Path, run_id: str, plan: list[str],
               address: str | None, resume: bool, sources: list[InputSource] = ()) -> int:
    """Connect (or start Ray), check resources, create or reopen the run, drive the plan."""
    import ray  # imported here so bad input is rejected in a fraction of a second

    from actors.cluster import ClusterError, connect
    from actors.driver import Driver, PhaseFailed
    from actors.registry import RegistryClient, get_registry

    try:
        session = connect(cfg.ray, address)
    except ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        try:
            check_resources(cfg, plan, ray.cluster_resources())
            registry = session.registry(get_registry(runs_dir / "registry.db", cfg.ray.namespace))
        except (ConfigError, ClusterError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        store = RegistryClient(registry)
        if resume:
            store.set_run_status(run_id, "running")
        else:
            (runs_dir / run_id).mkdir(parents=True)
            (runs_dir / run_id / CONFIG_FILE).write_text(dump(cfg))
            store.create_run(run_id, cfg.run.name, dump(cfg))
            stage_inputs(list(sources), runs_dir / run_id)
        (runs_dir / run_id / "session.json").write_text(
            json.dumps({"dashboard_url": session.dashboard_url}))
        reporter = RunReporter()
        reporter.header(run_id, session.dashboard_url, plan, str(runs_dir), session.job_id())
        driver = Driver(cfg, run_id, runs_dir.resolve(), plan, registry, reporter)
        try:
            reports = driver.run()
        except InputModelError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except PhaseFailed as err:
            reporter.summary(err.reports)
            print(f"error: {err}", file=sys.stderr)
            print(f"resume with: forge resume {run_id} --runs-dir {runs_dir}", file=sys.stderr)
            return 1
        reporter.summary(reports)
        print(f"run {run_id} done; models: forge models --run {run_id} --runs-dir {runs_dir}")
        return 0
    finally:
        session.close()


if __name__ == "__main__":
    sys.exit(main())
