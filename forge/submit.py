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
import re
import secrets
import sqlite3
import sys

from forge.config import ConfigError, PipelineConfig, dump, from_yaml_text, load
from forge.console import RunReporter
from forge.data.errors import DataError
from forge.data.text import CORPUS_FILE, Corpus, load_corpus, save_corpus
from forge.pipeline.inputs import InputModelError, InputSource, resolve_inputs, stage_inputs
from forge.pipeline.plan import select_phases
from forge.pipeline.registry import available_phases
from forge.registry import RegistryError, RegistryStore
from forge.registry.store import corrupt_registry
from forge.registry.snapshot import restore_registry
from forge.session import SESSION_FILE, session_record
from forge.storage import RunStorage, StorageError

CONFIG_FILE = "config.yaml"
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # one name: no path separators


class InputError(Exception):
    """Bad input found before any work starts (exit 2)."""


def build_parser(prog: str = "python -m forge.submit") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Run the Agent Forge pipeline on Ray.")
    p.add_argument("--config", default=None, help="pipeline YAML (default config/pipeline.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set phases.cognate.train.steps=50 (repeatable)")
    p.add_argument("--phases", default=None, help="subset 'a,b' or range 'a..b' of pipeline.phases")
    p.add_argument("--runs-dir", default=None,
                   help="where runs live: a directory or a URI such as s3://bucket/runs (run.runs_dir)")
    p.add_argument("--resume", default=None, metavar="RUN_ID", help="continue an earlier run")
    p.add_argument("--input", action="append", default=[], metavar="MODEL",
                   help="start the first phase from this artifact dir or model id (repeatable; "
                        "same as pipeline.inputs)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (else RAY_ADDRESS, auto); 'local' starts a new local Ray")
    return p


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def resolve_config(args: argparse.Namespace) -> tuple[PipelineConfig, RunStorage, str]:
    """The config, run storage and run id this invocation uses; raises ConfigError/InputError
    (or StorageError when the runs location cannot be read)."""
    if args.resume:
        if args.config or args.set or args.input:
            raise InputError("--resume uses the run's saved config; drop --config/--set/--input")
        if not RUN_ID.fullmatch(args.resume) or ".." in args.resume:
            raise InputError(f"--resume {args.resume}: not a run id (a name inside the runs "
                             "directory, as `forge status` lists them)")
        storage = RunStorage(args.runs_dir or "runs")
        saved = storage.pull(f"{args.resume}/{CONFIG_FILE}")
        if not saved.is_file():
            raise InputError(f"--resume {args.resume}: no run at {storage.uri(args.resume)}")
        check_registered(storage, args.resume)
        storage.check_writable()
        return from_yaml_text(saved.read_text()), storage, args.resume
    overrides = list(args.set)
    if args.input:
        overrides.append("pipeline.inputs=" + json.dumps(args.input))
    if args.runs_dir:
        overrides.append(f"run.runs_dir={args.runs_dir}")
    cfg = load(args.config, overrides)
    storage = RunStorage(cfg.run.runs_dir)
    storage.check_writable()  # a read-only disk, bad URI, bucket or credential: before Ray
    return cfg, storage, new_run_id()


def check_registered(storage: RunStorage, run_id: str) -> None:
    """A run to resume must have its row in the registry (restored from the storage's snapshot
    on a new head): a directory alone is not a run forge can continue."""
    restore_registry(storage)
    try:
        store = RegistryStore(storage.registry_path, readonly=True)
    except RegistryError as err:
        raise InputError(f"--resume {run_id}: {err}") from None
    try:
        store.get_run(run_id)
    except sqlite3.DatabaseError as err:
        raise InputError(f"--resume {run_id}: {corrupt_registry(store.path, err)}") from None
    except RegistryError:
        raise InputError(f"--resume {run_id}: the registry {storage.registry_path} has no row "
                         "for it (a directory alone cannot be resumed)") from None
    finally:
        store.close()


def check_resources(cfg: PipelineConfig, plan: list[str], nodes: list[dict]) -> None:
    """Every actor a phase starts must fit one node (`nodes`: each live node's resources):
    CPUs always, GPUs only where the cluster has some. A request no node can meet would wait
    forever in Ray's queue, so it is bad input."""
    cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    where = "the cluster's" if len(nodes) == 1 else "the largest node's"
    for name in plan:
        for cpu_key, gpu_key, res in cfg.phase(name).actor_requests():
            if res.num_cpus > cpus:
                raise ConfigError(f"phases.{name}.{cpu_key}: got {res.num_cpus}; allowed: at "
                                  f"most {where} {cpus:g} CPUs")
            if gpus and res.num_gpus > gpus:
                raise ConfigError(f"phases.{name}.{gpu_key}: got {res.num_gpus}; allowed: at "
                                  f"most {where} {gpus:g} GPUs")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg, storage, run_id = resolve_config(args)
        plan = select_phases(cfg.pipeline.phases, args.phases)
    except (ConfigError, InputError, StorageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not plan:  # an empty file or `pipeline.phases: []`: nothing to do is bad input
        print("error: pipeline.phases: empty, nothing to run; phases available in this version: "
              f"{', '.join(available_phases()) or '(none yet)'}", file=sys.stderr)
        return 2
    if not args.resume:  # the saved config says what this run runs: resume follows the same plan
        cfg = dataclasses.replace(cfg, pipeline=dataclasses.replace(cfg.pipeline, phases=tuple(plan)))
    try:
        sources = [] if args.resume else resolve_inputs(cfg.pipeline.inputs, storage)
        # Gathered here, once, where data.text_files are: every phase on any node reads this copy.
        corpus = None if args.resume else load_corpus(cfg.data)
    except (InputModelError, StorageError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return run_on_ray(cfg, storage, run_id, plan, args.address, resume=bool(args.resume),
                      sources=sources, corpus=corpus)


def create_run_files(storage: RunStorage, run_id: str, cfg: PipelineConfig,
                     sources: list[InputSource], corpus: Corpus) -> None:
    """The new run's saved config, documents and staged inputs, written to the run storage."""
    storage.write_text(f"{run_id}/{CONFIG_FILE}", dump(cfg))
    save_corpus(corpus, storage.local(f"{run_id}/{CORPUS_FILE}"))
    storage.push(f"{run_id}/{CORPUS_FILE}")
    if sources:
        stage_inputs(list(sources), storage.local(run_id))
        storage.push(f"{run_id}/inputs")
        if storage.local(f"{run_id}/tokenizer.json").is_file():
            storage.push(f"{run_id}/tokenizer.json")


def run_on_ray(cfg: PipelineConfig, storage: RunStorage, run_id: str, plan: list[str],
               address: str | None, resume: bool, sources: list[InputSource] = (),
               corpus: Corpus | None = None) -> int:
    """Connect (or start Ray), check resources, create or reopen the run, drive the plan."""
    import ray  # imported here so bad input is rejected in a fraction of a second

    from actors.cluster import ClusterError, connect
    from actors.driver import Driver, PhaseFailed
    from actors.errors import one_line
    from actors.registry import RegistryClient, get_registry

    try:
        session = connect(cfg.ray, address)
    except ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        try:
            check_resources(cfg, plan, [n["Resources"] for n in ray.nodes() if n["Alive"]])
            restore_registry(storage)  # a new head: the runs so far, from the storage's copy
            registry = session.registry(get_registry(storage.registry_path, cfg.ray.namespace))
        except (ConfigError, ClusterError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        store = RegistryClient(registry)
        if resume:
            store.set_run_status(run_id, "running")
        else:
            try:
                create_run_files(storage, run_id, cfg, sources, corpus or load_corpus(cfg.data))
            except (StorageError, OSError):
                storage.remove(run_id)  # not registered yet: leave no half-made run behind
                raise
            store.create_run(run_id, cfg.run.name, dump(cfg))
        storage.write_text(f"{run_id}/{SESSION_FILE}",
                           json.dumps(session_record(session.dashboard_url)))
        reporter = RunReporter()
        reporter.header(run_id, session.dashboard_url, plan, storage.display, session.job_id())
        driver = Driver(cfg, run_id, storage, plan, registry, reporter)
        try:
            reports = driver.run()
        except InputModelError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except (PhaseFailed, StorageError, OSError, ray.exceptions.RayError) as err:
            # PhaseFailed carries the phase's own line; the others: the registry or the disk
            # failed under the driver (a full disk), said in one line, never a traceback
            reporter.summary(getattr(err, "reports", []))
            message = str(err) if isinstance(err, (PhaseFailed, StorageError)) else one_line(err)
            print(f"error: {fault_line(message, storage)}", file=sys.stderr)
            print(f"resume with: forge resume {run_id} --runs-dir {storage.display}", file=sys.stderr)
            return 1
        reporter.summary(reports)
        print(f"run {run_id} done; models: forge models --run {run_id} --runs-dir {storage.display}")
        return 0
    except (StorageError, OSError, ray.exceptions.RayError) as err:  # the run's first files
        print(f"error: {fault_line(str(err) if isinstance(err, StorageError) else one_line(err), storage)}",
              file=sys.stderr)
        return 1
    finally:
        session.close()


def serve(options) -> int:
    """`forge serve` after its options are checked (forge.serve.cli): the Ray Serve deployment
    lives in actors/, which only this module of forge/ may reach."""
    from actors.serve import main as serve_main

    return serve_main(options)


def fault_line(message: str, storage: RunStorage) -> str:
    """`message`, led by the disk when it is full (the likely fix is not in the message)."""
    full = ("No space left on device", "database or disk is full", "Errno 28")
    if any(marker in message for marker in full):
        return f"no space left on the disk of {storage.display} ({message}); free space first"
    return message


if __name__ == "__main__":
    sys.exit(main())
