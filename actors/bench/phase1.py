"""`python -m forge.bench phase1`: does Ray add little to Phase 1 training?

(a) Three trainings at once (each an equal CPU share, 1 thread) vs one after another (each all
    CPUs), next to the ideal 3 x one-thread step time x steps / cores computed from plain
    measurements. Goal: concurrent wall time within 10% of that ideal.
(b) Tokens/s of one TrainerActor vs the same `Trainer` loop run in this process without Ray, on
    the same model, data and thread count. Goal: >= 0.95.
Model and data: the default pipeline's (config/pipeline.yaml).
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import ray
import torch

from actors.trainer import TrainerActor
from forge.config import DEFAULT_CONFIG, PipelineConfig, load
from forge.models import CognateForCausalLM
from forge.optim import build_optimizer
from forge.phases.cognate import SpecialistBatches, build_seed_model, task_weights_for
from forge.phases.common import prepare_data
from forge.training.loop import LoopSettings, Trainer

UNITS = {"one_thread_step_s": "s", "all_threads_step_s": "s", "concurrent_wall_s": "s",
         "sequential_wall_s": "s", "ideal_concurrent_s": "s", "concurrent_over_ideal": "ratio",
         "sequential_over_concurrent": "ratio", "plain_tokens_per_s": "tokens/s",
         "actor_tokens_per_s": "tokens/s", "actor_over_plain": "ratio"}
REPEATS = 1


@dataclass(frozen=True)
class BenchJob:
    config: PipelineConfig
    run_dir: Path
    seed_path: Path
    steps: int
    name: str


def steps_for(quick: bool) -> int:
    return 6 if quick else 30


WARMUP = 3  # steps before the clock starts: first steps pay for allocation and caches


def timed_training(job: BenchJob, log=None, progress=None) -> dict:
    """Train a specialist from the seed for WARMUP + `job.steps` steps; time the last
    `job.steps`. Metrics are not logged (no registry here): only the loop itself is timed."""
    cfg = job.config
    spec = cfg.phase("cognate").specialisations[0]
    data = prepare_data(cfg, job.run_dir)
    model = CognateForCausalLM.from_pretrained(job.seed_path)
    optimizer = build_optimizer(model, cfg.optim.for_phase("cognate"))
    batches = SpecialistBatches(data, spec, cfg.phase("cognate").train.batch_size,
                                cfg.data.seq_len, task_weights_for(spec, cfg))
    before, after = optimizer.hooks()
    stamps: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as ckpt:
        trainer = Trainer(job.name, model, optimizer, batches,
                          LoopSettings(steps=WARMUP + job.steps, checkpoint_every=10**9,
                                       log_every=1), ckpt, "bench", torch.device("cpu"),
                          lambda step, m: stamps.setdefault(step, time.time()),
                          lambda d, t: None, before, after)
        trainer.run()
    wall = stamps[WARMUP + job.steps] - stamps[WARMUP]
    tokens = job.steps * batches(0)["input_ids"].numel()
    return {"wall_s": wall, "tokens_per_s": tokens / wall, "start": stamps[WARMUP],
            "end": stamps[WARMUP + job.steps]}


def plain(job: BenchJob, threads: int) -> dict:
    torch.set_num_threads(threads)
    return timed_training(job)


def start_trainers(jobs: list[BenchJob], cpus: float) -> list:
    actors = [TrainerActor.options(num_cpus=cpus).remote(j.name, max(1, int(cpus)), None,
                                                         "bench", "cognate") for j in jobs]
    ray.get([a.progress.remote() for a in actors], timeout=300)  # start-up is not training
    return actors


def train_on(actors: list, jobs: list[BenchJob]) -> list[dict]:
    try:
        return ray.get([a.train.remote(timed_training, j) for a, j in zip(actors, jobs)],
                       timeout=3600)
    finally:
        for a in actors:
            ray.kill(a)


def concurrently(jobs: list[BenchJob], cpus: float) -> tuple[float, list[dict]]:
    """Wall time of all jobs at once, each in its own TrainerActor with `cpus`: from the first
    timed step's start to the last one's end (data loading and warm-up excluded)."""
    results = train_on(start_trainers(jobs, cpus), jobs)
    return max(r["end"] for r in results) - min(r["start"] for r in results), results


def one_after_another(jobs: list[BenchJob], cpus: float) -> float:
    """Wall time of the jobs in turn (actor start-up excluded, as above)."""
    wall = 0.0
    for job in jobs:
        wall += concurrently([job], cpus)[0]
    return wall


def make_jobs(quick: bool, root: Path) -> list[BenchJob]:
    cfg = load(DEFAULT_CONFIG, ["wandb.mode=disabled"])
    data = prepare_data(cfg, root)
    seed = build_seed_model(cfg, len(data.tokenizer), 0)
    seed.save_pretrained(root / "seed")
    return [BenchJob(cfg, root, root / "seed", steps_for(quick), f"m{i}") for i in range(3)]


def measure(quick: bool) -> dict[str, float]:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        jobs = make_jobs(quick, Path(tmp))
        one = plain(jobs[0], 1)
        every = plain(jobs[0], cores)
        ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False,
                 object_store_memory=75 * 1024**2, _node_ip_address="127.0.0.1")
        try:
            concurrent, _ = concurrently(jobs, cores / len(jobs))
            sequential = one_after_another(jobs, cores)
            _, (alone,) = concurrently(jobs[:1], 1)
        finally:
            ray.shutdown()
    ideal = len(jobs) * one["wall_s"] / cores
    steps = jobs[0].steps
    return {"one_thread_step_s": one["wall_s"] / steps, "all_threads_step_s": every["wall_s"] / steps,
            "concurrent_wall_s": concurrent, "sequential_wall_s": sequential,
            "ideal_concurrent_s": ideal, "concurrent_over_ideal": concurrent / ideal,
            "sequential_over_concurrent": sequential / concurrent,
            "plain_tokens_per_s": one["tokens_per_s"], "actor_tokens_per_s": alone["tokens_per_s"],
            "actor_over_plain": alone["tokens_per_s"] / one["tokens_per_s"]}


def setup(quick: bool) -> dict:
    cfg = load(DEFAULT_CONFIG)
    train = cfg.phase("cognate").train
    return {"steps_per_training": steps_for(quick), "batch_size": train.batch_size,
            "seq_len": cfg.data.seq_len, "trainings": 3,
            "goal_concurrent_over_ideal": "<= 1.10", "goal_actor_over_plain": ">= 0.95"}
