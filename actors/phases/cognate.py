"""Phase 1 on Ray: three TrainerActors at once, sharing one GPU by fractions (or the CPUs)."""
from __future__ import annotations

import ray

from actors.resources import equal_share, gpu_share, node_cpus, scheduling_strategy
from actors.trainer import TrainerActor
from forge.phases.cognate import (OUTPUT_METADATA, PHASE, SpecialistJob, build_seed_model,
                                  check_context, check_diversity, load_state,
                                  train_specialist)
from forge.phases.cognate_config import CognatePhaseConfig
from forge.phases.common import evaluate_split, pick_device, prepare_data
from forge.pipeline import (BasePhase, HandoffContract, PhaseContext, PhaseOutput, PhaseResult,
                            model_id, register_phase, save_artifact)
from forge.pipeline.phase import output_ref


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


@register_phase
class CognatePhase(BasePhase):
    """Seed model -> three specialists trained concurrently -> diversity and handoff checks."""

    name = PHASE
    config_class = CognatePhaseConfig
    input_contract = HandoffContract(0, 0)

    def run(self, inputs, ctx: PhaseContext) -> PhaseResult:
        cfg, settings = ctx.config, ctx.settings
        data = prepare_data(cfg, ctx.run_dir, ctx.storage)
        seed_value = cfg.run.seed if settings.init_seed is None else settings.init_seed
        seed_model = build_seed_model(cfg, len(data.tokenizer), seed_value)
        seed_manifest = save_artifact(seed_model, ctx.artifact_dir("seed"),
                                      metadata={"vocab_size": len(data.tokenizer), "role": "seed"})
        ctx.storage.push(ctx.rel(ctx.artifact_dir("seed")))  # trainers on other nodes pull it
        seed_id = model_id(ctx.run_id, PHASE, "seed")
        jobs = [SpecialistJob(ctx.run_id, ctx.run_id, cfg, spec, ctx.rel(ctx.artifact_dir("seed")),
                              seed_id, seed_manifest["digest"], ctx.rel(ctx.artifact_dir(spec.name)),
                              f"{ctx.run_id}/checkpoints/{PHASE}/{spec.name}", ctx.storage)
                for spec in settings.specialisations]
        cpus, gpus = trainer_resources(settings, len(jobs))
        results, nodes = run_trainers(jobs, ctx, cpus, gpus)
        seed_metrics = evaluate_split(seed_model, data, cfg)
        ctx.log_metrics(0, seed_metrics, model="seed")
        states = {name: load_state(ctx.storage.pull(ctx.rel(ctx.artifact_dir(name))))
                  for name in results}
        diversity = check_diversity(states, seed_model.state_dict(), settings.diversity_floor)
        ctx.log_metrics(settings.train.steps, diversity)
        check_context(results, settings.min_prompt_swap_gain)
        key = "text/bits_per_byte"
        beats = {n: r[key] < seed_metrics[key] for n, r in results.items()}
        outputs = [PhaseOutput("seed", [], handed_on=False)]
        outputs += [PhaseOutput(j.spec.name, [(seed_id, f"train:{j.spec.name}")]) for j in jobs]
        return PhaseResult(outputs, key_metric=("val_bits_per_byte", min(r[key] for r in results.values())),
                           summary={"seed": seed_metrics, "models": results, "diversity": diversity,
                                    "beats_seed": beats, "trainer_nodes": nodes,
                                    "trainer_resources": {
                                        "num_cpus": cpus, "num_gpus": gpus,
                                        "device": pick_device(cfg.run.device).type}})

    def validate_output(self, result: PhaseResult, ctx: PhaseContext) -> None:
        s = ctx.settings
        contract = HandoffContract(len(s.specialisations), len(s.specialisations), s.min_params,
                                   s.max_params, OUTPUT_METADATA)
        contract.check([output_ref(ctx, o) for o in result.outputs if o.handed_on], "cognate output")
