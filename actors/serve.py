"""Ray Serve deployment of the OpenAI-compatible app (`forge.serve.app`): replicas, resources,
autoscaling. The app and the generation code are pure (forge/serve); this file only places them.

    url = deploy(options)          # on the current Ray; returns http://HOST:PORT
    ...                            # clients POST url + "/v1/completions"
    serve.shutdown()

Each replica loads the model once (packed ternary unpacked at load) and serves requests on its
own FastAPI ingress; Serve's proxy spreads requests over replicas. With --min/--max-replicas,
Serve autoscales on ongoing requests per replica (target: half of max_ongoing_requests).
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import ray
from ray import serve

from forge.serve.cli import ServeOptions
from forge.serve.source import ModelSource

APP_NAME = "forge"


@serve.deployment
@serve.ingress()
class CompletionServer:
    """One replica: the model and tokenizer of `source`, behind `forge.serve.app.build_app`."""

    def __init__(self, path: str, tokenizer: str, name: str, torch_threads: int) -> None:
        import torch

        from forge.serve.engine import CompletionEngine
        from forge.serve.source import load_source

        torch.set_num_threads(torch_threads)  # Ray sets OMP threads to 1 for fractional CPUs
        model, tok = load_source(ModelSource(Path(path), Path(tokenizer), name))
        self.engine = CompletionEngine(model, tok, name)

    def __serve_build_asgi_app__(self):
        from forge.serve.app import build_app

        return build_app(self.engine)


def deployment_options(options: ServeOptions) -> dict:
    """`serve.deployment.options(...)` of the CLI options: replicas or autoscaling, resources."""
    actor = {"num_cpus": options.num_cpus}
    if options.num_gpus:
        actor["num_gpus"] = options.num_gpus
    out = {"ray_actor_options": actor, "max_ongoing_requests": options.max_ongoing_requests,
           "health_check_period_s": 10}
    if options.min_replicas is None:
        out["num_replicas"] = options.replicas
    else:
        out["autoscaling_config"] = {
            "min_replicas": options.min_replicas, "max_replicas": options.max_replicas,
            "initial_replicas": max(options.min_replicas, 1),
            "target_ongoing_requests": max(1, options.max_ongoing_requests // 2)}
    return out


def deploy(options: ServeOptions) -> str:
    """Start Serve's HTTP proxy on host:port and deploy the model; the base URL once healthy."""
    src = options.source
    serve.start(http_options={"host": options.host, "port": options.port})
    threads = max(1, int(options.num_cpus))
    app = CompletionServer.options(**deployment_options(options)).bind(
        str(src.path.resolve()), str(src.tokenizer.resolve()), src.name, threads)
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    return f"http://{options.host}:{options.port}"


def main(options: ServeOptions, stop: threading.Event | None = None) -> int:
    """`forge serve`: connect (or start) Ray, deploy, serve until Ctrl-C / SIGTERM (or until
    `stop` is set, for callers that run it in a thread), then shut Serve down."""
    from actors.cluster import ClusterError, connect
    from forge.config.sections import RayConfig

    try:
        session = connect(RayConfig(address=options.address, include_dashboard=False))
    except ClusterError as err:
        print(f"forge serve: {err}", file=sys.stderr)
        return 2
    try:
        try:
            url = deploy(options)
        except (RuntimeError, ValueError, ray.exceptions.RayError) as err:
            print(f"forge serve: could not deploy ({str(err).strip().splitlines()[0]})",
                  file=sys.stderr)
            return 1
        print(f"serving {options.source.name} at {url}/v1 (POST /v1/completions, GET /v1/models,"
              f" GET /health); Ctrl-C stops", flush=True)
        if stop is not None:
            stop.wait()
            return 0
        signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops as cleanly as Ctrl-C
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        if stop is None:  # a second Ctrl-C must not cut the shutdown short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        serve.shutdown()
        session.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
