"""Phase 1's executor on Ray: three TrainerActors at once, sharing one GPU by fractions (or
the CPUs). The phase itself is `forge.phases.cognate.CognatePhase`."""
from __future__ import annotations

import ray

from actors.resources import equal_share, gpu_share, node_cpus, scheduling_strategy
from actors.trainer import TrainerActor
from forge.phases.cognate import PHASE, SpecialistJob, Trained, train_specialist
from forge.phases.cognate_config import CognatePhaseConfig
from forge.pipeline import PhaseContext


class RayTrainers:
    """`SpecialistExecutor` on Ray: one TrainerActor per specialist, each with its share."""

    def train(self, jobs: list[SpecialistJob], ctx: PhaseContext) -> Trained:
        cpus, gpus = trainer_resources(ctx.settings, len(jobs))
        results, nodes = run_trainers(jobs, ctx, cpus, gpus)
        return Trained(results, nodes, {"num_cpus": cpus, "num_gpus": gpus})


def trainer_resources(settings: CognatePhaseConfig, n: int) -> tuple[float, float]:
    """(CPUs, GPUs) per trainer: an equal CPU share that lets all of them run at once unless set;
    GPU fractions only when the cluster has GPUs."""
    cpus = settings.trainer_cpus or equal_share(node_cpus(), n)
    return cpus, gpu_share(settings.trainer_gpus)


def run_trainers(jobs: list[SpecialistJob], ctx: PhaseContext, cpus: float,
                 gpus: float) -> tuple[dict[str, dict], dict[str, str]]:
    """Start one TrainerActor per job; all run at once when their shares fit, else the rest wait
    in Ray's queue and start as finished trainers are ended (freeing their share). Reports
    summed progress and how many wait. Returns each model's metrics and its trainer's node."""
    settings = ctx.settings
    registry = ctx.recorder.registry.handle
    strategy = scheduling_strategy(ctx.config.ray.placement)
    actors = {job.spec.name: TrainerActor.options(
        name=f"{PHASE}/trainer-{job.spec.name}@{ctx.run_id}", num_cpus=cpus, num_gpus=gpus,
        max_restarts=settings.trainer_max_restarts, scheduling_strategy=strategy,
        max_task_retries=settings.trainer_max_restarts,
    ).remote(job.spec.name, max(1, int(cpus)), registry, ctx.run_id, PHASE) for job in jobs}
    pending = {actors[j.spec.name].train.remote(train_specialist, j): j.spec.name for j in jobs}
    started = {name: actor.node_id.remote() for name, actor in actors.items()}  # ready once placed
    results, nodes, seen = {}, {}, {}
    try:
        while pending:
            done, _ = ray.wait(list(pending), timeout=1.0)
            for ref in done:
                name = pending.pop(ref)
                results[name] = ray.get(ref)
                nodes[name] = ray.get(started.pop(name), timeout=60)
                ray.kill(actors.pop(name))  # its share goes to a trainer still waiting
            placed, _ = ray.wait(list(started.values()), num_returns=len(started), timeout=0)
            nodes.update({n: ray.get(r) for n, r in started.items() if r in placed})
            running = {n: a for n, a in actors.items() if n in nodes}
            report_progress(ctx, running, seen, results, len(actors) - len(running), (cpus, gpus))
    finally:
        for actor in actors.values():
            ray.kill(actor)
    return results, nodes


def report_progress(ctx: PhaseContext, running: dict, seen: dict, finished: dict, waiting: int,
                    share: tuple[float, float]) -> None:
    """Summed steps over all trainers (finished ones count whole, waiting ones as not begun),
    with a note saying how many have not started (waiting for a free share, or starting)."""
    for name, actor in running.items():
        try:
            seen[name] = ray.get(actor.progress.remote(), timeout=2)["done"]
        except (ray.exceptions.RayError, TimeoutError):
            continue  # restarting: it reports again once it has resumed
    steps = ctx.settings.train.steps
    total = steps * (len(running) + len(finished) + waiting)
    done = steps * len(finished) + sum(seen.get(n, 0) for n in running)
    note = "steps over all trainers"
    if waiting:
        cpus, gpus = share
        note += (f"; {len(running)} running, {waiting} waiting to start "
                 f"({cpus:g} CPU{f', {gpus:g} GPU' if gpus else ''} each)")
    ctx.progress(done, total, note)
