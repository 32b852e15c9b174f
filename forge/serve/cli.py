"""`forge serve MODEL` and `forge export MODEL --format hf OUT`.

    forge serve runs/<run>/bitnet/ternary                  # http://127.0.0.1:8000/v1/completions
    forge serve RUN/phase/name --replicas 2 --num-cpus 0.5 --num-gpus 0.25
    forge export runs/<run>/bitnet/ternary --format hf exported/

MODEL is a model folder or a registered id (run/phase/name, looked up in --runs-dir); its
tokenizer is the run's tokenizer.json unless --tokenizer names one. Exit 0 on success, 2 on bad
input (one line naming what is wrong; nothing written, nothing started).
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

from forge.serve.source import ModelSource, ModelSourceError, resolve_model


@dataclass(frozen=True)
class ServeOptions:
    """How `forge serve` deploys one model on Ray Serve (checked by `serve_options`)."""

    source: ModelSource
    host: str = "127.0.0.1"
    port: int = 8000
    replicas: int = 1
    min_replicas: int | None = None  # autoscaling bounds; both None: a fixed replica count
    max_replicas: int | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_ongoing_requests: int = 8
    address: str | None = None  # Ray cluster; None: RAY_ADDRESS, a running cluster or a new one


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model folder or registered id run/phase/name")
    p.add_argument("--tokenizer", default=None, help="tokenizer.json (default: the run's)")
    p.add_argument("--runs-dir", default="runs", help="where registered ids are looked up")


def serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="forge serve", description="Serve a model on Ray Serve "
                                "with an OpenAI-compatible API (/v1/completions, /v1/models).")
    _model_args(p)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--replicas", type=int, default=1, help="fixed number of replicas")
    p.add_argument("--min-replicas", type=int, default=None, help="autoscaling lower bound")
    p.add_argument("--max-replicas", type=int, default=None, help="autoscaling upper bound")
    p.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per replica (fractional ok)")
    p.add_argument("--num-gpus", type=float, default=0.0,
                   help="GPUs per replica, e.g. 0.25: four replicas share one GPU")
    p.add_argument("--max-ongoing-requests", type=int, default=8,
                   help="requests one replica runs at once (autoscaling target is half of it)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: auto/local)")
    return p


def serve_options(args: argparse.Namespace) -> ServeOptions:
    """Check every option before anything starts; ModelSourceError names the first bad one."""
    checks = [("--port", args.port, 1 <= args.port <= 65535, "1..65535"),
              ("--replicas", args.replicas, args.replicas >= 1, ">= 1"),
              ("--num-cpus", args.num_cpus, math.isfinite(args.num_cpus) and args.num_cpus >= 0,
               ">= 0"),
              ("--num-gpus", args.num_gpus, math.isfinite(args.num_gpus) and args.num_gpus >= 0,
               ">= 0"),
              ("--max-ongoing-requests", args.max_ongoing_requests,
               args.max_ongoing_requests >= 1, ">= 1")]
    for name, value, ok, allowed in checks:
        if not ok:
            raise ModelSourceError(f"{name}: got {value}; allowed: {allowed}")
    lo, hi = args.min_replicas, args.max_replicas
    if (lo is None) != (hi is None):
        raise ModelSourceError("--min-replicas/--max-replicas: give both (autoscaling) or neither")
    if lo is not None and not 0 <= lo <= hi or hi is not None and hi < 1:
        raise ModelSourceError(f"--min-replicas {lo} / --max-replicas {hi}: allowed "
                               "0 <= min <= max, max >= 1")
    source = resolve_model(args.model, args.runs_dir, args.tokenizer)
    return ServeOptions(source, args.host, args.port, args.replicas, lo, hi, args.num_cpus,
                        args.num_gpus, args.max_ongoing_requests, args.address)


def serve_main(argv: list[str] | None = None) -> int:
    """Parse and check, then hand over to the Ray Serve deployment (forge.submit.serve)."""
    args = serve_parser().parse_args(argv)
    try:
        options = serve_options(args)
        from forge.serve.source import load_source

        load_source(options.source)  # a broken artifact is exit 2 here, not a dead replica
    except ModelSourceError as err:
        print(f"forge serve: {err}", file=sys.stderr)
        return 2
    from forge.submit import serve  # the one module of forge/ that reaches Ray

    return serve(options)


def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="forge export", description="Export a model as a Hugging "
                                "Face folder that loads with trust_remote_code=True, no forge.")
    _model_args(p)
    p.add_argument("--format", required=True, help="output format: hf")
    p.add_argument("out", metavar="OUT", help="output folder (must not exist, or be empty)")
    return p


def export_main(argv: list[str] | None = None) -> int:
    """`forge export`: 0 and the folder written, or 2 and one line naming the problem."""
    from forge.serve.export import FORMATS, export_hf

    args = export_parser().parse_args(argv)
    try:
        if args.format not in FORMATS:
            raise ModelSourceError(f"--format: got {args.format!r}; allowed: {', '.join(FORMATS)}")
        out = export_hf(resolve_model(args.model, args.runs_dir, args.tokenizer), args.out)
    except ModelSourceError as err:
        print(f"forge export: {err}", file=sys.stderr)
        return 2
    print(f"exported to {out}; load it with AutoModelForCausalLM.from_pretrained({str(out)!r}, "
          "trust_remote_code=True)")
    return 0
