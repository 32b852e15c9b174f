"""Phase 2 (EvoMerge), its pure steps: the parents and their common base, building and scoring
one candidate, and the generation-to-generation bookkeeping (DESIGN.md section 5).

The Ray side (`actors/phases/evomerge.py`) scores each generation's candidates as Ray Tune trials
and calls `Evolution.advance` at the generation barrier of its PBT-style scheduler. Candidate
weights live in the run storage (`<run>/checkpoints/evomerge/candidates/<id>/`), so a trial is
sent ids and storage paths, never tensors, and pulls what it needs onto its own node.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import posixpath
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from forge.config import PipelineConfig
from forge.eval import evaluate
from forge.evolve import (Candidate, EvolutionState, build_candidate, diversity, fitness,
                          generation_generator, initial_population, initial_recipes,
                          next_generation, reseed)
from forge.merge import StateDict
from forge.models import CognateConfig, CognateForCausalLM
from forge.phases.common import RunData, prepare_data
from forge.phases.evomerge_config import PHASE, EvoMergePhaseConfig, SampleSizes
from forge.pipeline.artifacts import ArtifactError, read_manifest, save_artifact, verify_artifact
from forge.storage import RunStorage

SEED_METADATA = "seed_dir"  # Phase 1 names its seed model (the common base) relative to a model


@dataclass(frozen=True)
class ParentSet:
    """Where the parents and their common ancestor are (storage paths and digests: cheap to ship)."""

    paths: tuple[str, ...]
    digests: tuple[str, ...]
    base_path: str | None  # None: no common ancestor found; the parents' mean stands in
    base_digest: str | None = None

    def fingerprint(self, settings: EvoMergePhaseConfig, seed: int) -> str:
        """An evolution state is resumed only for the same parents, base and settings."""
        text = json.dumps([self.digests, self.base_path, repr(settings.evolve), seed])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def find_base(parent_paths: list[str], storage: RunStorage) -> tuple[str | None, str | None]:
    """(storage path, digest) of the parents' shared seed model when every parent (pulled onto
    this node, paths under `storage.local()`) names the same one and it verifies; else
    (None, None)."""
    found = set()
    for path in parent_paths:
        rel = read_manifest(path).get("metadata", {}).get(SEED_METADATA)
        found.add(posixpath.normpath(f"{storage.rel(path)}/{rel}") if rel else None)
    if len(found) != 1 or None in found:
        return None, None
    (base,) = found
    try:
        return base, verify_artifact(storage.pull(base))["digest"]
    except ArtifactError:
        return None, None


@functools.lru_cache(maxsize=16)
def _load(path: str, digest: str) -> tuple[StateDict, CognateConfig]:
    """A model's weights and config, cached per process (a reused Tune actor loads each once)."""
    model = CognateForCausalLM.from_pretrained(path)
    return {k: v.detach() for k, v in model.state_dict().items()}, model.config


def _load_stored(storage: RunStorage, rel: str, digest: str) -> tuple[StateDict, CognateConfig]:
    """A parent (or the base) from this node's mirror; pulled only when the mirror does not
    already hold exactly that digest (every candidate of a trial needs the same parents)."""
    local = storage.local(rel)
    try:
        current = read_manifest(local)["digest"]
    except (ArtifactError, KeyError):
        current = None
    if current != digest:
        storage.pull(rel)
    return _load(str(local), digest)


def load_parents(parents: ParentSet,
                 storage: RunStorage) -> tuple[list[StateDict], StateDict, CognateConfig]:
    """The parents' state dicts, the base (TIES/DARE task vectors start there) and the config."""
    loaded = [_load_stored(storage, p, d) for p, d in zip(parents.paths, parents.digests)]
    sds, config = [sd for sd, _ in loaded], loaded[0][1]
    if parents.base_path is not None:
        base = _load_stored(storage, parents.base_path, parents.base_digest)[0]
    else:  # documented fallback: task vectors relative to the parents' mean
        base = {k: torch.stack([sd[k].float() for sd in sds]).mean(0).to(sds[0][k].dtype)
                for k in sds[0]}
    return sds, base, config


@functools.lru_cache(maxsize=2)
def _config(config_yaml: str) -> PipelineConfig:
    """The run's config, parsed once per process (every candidate of a trial actor shares it)."""
    from forge.config import from_yaml_text

    return from_yaml_text(config_yaml)


@functools.lru_cache(maxsize=2)
def _run_data(ctx: TrialContext) -> RunData:
    """The run's data and tokenizer (pulled from the storage), once per trial process."""
    return prepare_data(_config(ctx.config_yaml), ctx.storage.local(ctx.run_dir), ctx.storage)


def sample_eval(cfg: PipelineConfig, sizes: SampleSizes):
    """The run's evaluation settings with smaller samples and no untrained reference."""
    return dataclasses.replace(cfg.data.eval, max_documents=sizes.max_documents,
                               max_task_examples=sizes.max_task_examples,
                               max_new_tokens=sizes.max_new_tokens, reference=False)


def score_model(model: CognateForCausalLM, data: RunData, cfg: PipelineConfig, sizes: SampleSizes,
                split: str) -> dict[str, float]:
    """Evaluation metrics of `model` on a sample of `split` (validation selects; test reports)."""
    model.eval()
    with torch.no_grad():
        return evaluate(model, data.tokenizer, data.corpus.split(split), data.tasks.split(split),
                        sample_eval(cfg, sizes))


@dataclass(frozen=True)
class TrialContext:
    """What every trial shares, sent once (Tune's `with_parameters`)."""

    config_yaml: str
    run_dir: str  # storage paths, like everything below
    parents: ParentSet
    candidates_dir: str
    storage: RunStorage


def candidate_dir(ctx: TrialContext, candidate_id: str) -> Path:
    """Where a scored candidate is on this node, pulled from the run storage."""
    return ctx.storage.pull(f"{ctx.candidates_dir}/{candidate_id}")


def _fitness_of(path: Path) -> float | None:
    """The fitness an earlier attempt stored with a candidate (None: not there or broken)."""
    try:
        manifest = verify_artifact(path)
    except (ArtifactError, KeyError, ValueError):
        return None
    value = manifest.get("metrics", {}).get("fitness")
    return None if value is None else float(value)


def score_candidate(ctx: TrialContext, candidate: Candidate,
                    source_fitness: dict[str, float]) -> dict[str, Any]:
    """Build one candidate (recipe, elite + noise, or loser merge), score it on the validation
    sample and save it under `candidates/<id>`. A candidate already saved by an earlier attempt
    is not rebuilt. Returns its metrics with `fitness` (higher is better; -inf if it broke)."""
    cfg = _config(ctx.config_yaml)
    settings: EvoMergePhaseConfig = cfg.phase(PHASE)
    out = candidate_dir(ctx, candidate.id)
    started = time.time()
    cached = _fitness_of(out)
    if cached is not None:
        return {"fitness": cached, "cached": 1.0, "eval_started": started, "eval_ended": time.time()}
    parents, base, config = load_parents(ctx.parents, ctx.storage)
    built = {s: _load(str(path), read_manifest(path)["digest"])
             for s, path in ((s, candidate_dir(ctx, s)) for s in candidate.sources)}
    sd, merged_cfg = build_candidate(candidate, parents, base, config, built, source_fitness)
    model = CognateForCausalLM(merged_cfg)
    model.load_state_dict(sd)
    metrics = score_model(model, _run_data(ctx), cfg,
                          settings.fitness_eval, "validation")
    value = fitness(metrics, settings.evolve.fitness)
    metrics["fitness"] = value if math.isfinite(value) else -math.inf
    partial = out.with_name(f".{candidate.id}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    save_artifact(model, partial, metrics=metrics,
                  metadata={"candidate": candidate.to_dict(), "vocab_size": merged_cfg.vocab_size})
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    ctx.storage.push(ctx.storage.rel(out))
    return {**metrics, "cached": 0.0, "eval_started": started, "eval_ended": time.time()}


def _json_num(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


class Evolution:
    """The generation loop's state machine, persisted after every generation.

    `population()` is what to score now; `advance(scored)` records a scored generation and
    returns the next population, or None when the run is over (generations used up or the best
    fitness stalled). A state file from an earlier attempt with the same fingerprint is resumed:
    the next generation is recomputed from it exactly (seeded per generation).
    """

    def __init__(self, settings: EvoMergePhaseConfig, seed: int, n_layers: int, state_path: Path,
                 candidates_dir: Path, fingerprint: str, storage: RunStorage | None = None):
        self.settings, self.evolve, self.seed = settings, settings.evolve, seed
        self.state_path, self.candidates_dir, self.fingerprint = state_path, candidates_dir, fingerprint
        self.storage = storage or RunStorage(state_path.parent)  # default: the files themselves
        for path in (self.state_path, self.log_path):  # an earlier attempt's, maybe another node's
            self.storage.pull(self.storage.rel(path))
        self.state = self._resume() or EvolutionState.start(self.evolve)
        self.resumed_from = self.state.generation + 1  # the first generation this attempt scores
        if self.state.generation < 0:
            recipes = initial_recipes(n_layers, self.evolve, generation_generator(seed, 0))
            self.current = initial_population(recipes)
        else:
            self.current = self._next() or []

    def _resume(self) -> EvolutionState | None:
        if not self.state_path.is_file():
            return None
        saved = json.loads(self.state_path.read_text())
        if saved.get("fingerprint") != self.fingerprint:
            return None  # other parents or settings: start over
        return EvolutionState.from_dict(saved["state"])

    def population(self) -> list[Candidate]:
        return list(self.current)

    def finished(self) -> bool:
        rows = self.state.rows
        return bool(rows) and (rows[-1]["stopped"] or self.state.generation >= self.evolve.generations)

    def _next(self) -> list[Candidate] | None:
        if self.finished():
            return None
        gen = self.state.generation + 1
        g = generation_generator(self.seed, gen)
        scored = self.state.population
        made = next_generation(scored, gen, self.evolve, g)
        return reseed(made, scored, self.evolve.reseed_count, self.evolve, g)

    @property
    def log_path(self) -> Path:
        return self.state_path.with_name("candidates.jsonl")

    def advance(self, scored: list[tuple[Candidate, float]]) -> list[Candidate] | None:
        """Record the generation just scored; save; return the next one (None: done)."""
        gen = scored[0][0].generation
        self.state.record(gen, scored, diversity([c for c, _ in scored], self.evolve))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:  # every candidate ever scored: the lineage record
            for c, f in scored:
                log.write(json.dumps({"candidate": c.to_dict(), "fitness": _json_num(f)}) + "\n")
        self.save()
        self.collect_garbage()
        self.current = self._next() or []
        return self.current or None

    def ancestry(self, candidate_id: str) -> list[dict]:
        """The candidate and every candidate it descends from (by `sources`), newest first."""
        known = {}
        if self.log_path.is_file():
            for line in self.log_path.read_text().splitlines():
                item = json.loads(line)
                known[item["candidate"]["id"]] = item
        out, todo, seen = [], [candidate_id], set()
        while todo:
            cid = todo.pop(0)
            if cid in seen or cid not in known:
                continue
            seen.add(cid)
            out.append(known[cid])
            todo += known[cid]["candidate"]["sources"]
        return out

    def save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"fingerprint": self.fingerprint, "state": self.state.to_dict()}))
        tmp.replace(self.state_path)
        for path in (self.state_path, self.log_path):
            if path.is_file():
                self.storage.push(self.storage.rel(path))

    def collect_garbage(self) -> None:
        """Drop candidate weights older than `keep_generations`, except the best so far."""
        oldest = self.state.generation - self.settings.keep_generations + 1
        keep = {self.state.best_id}
        stored = self.storage.rel(self.candidates_dir)
        for name in self.storage.listdir(stored):
            if not re.fullmatch(r"g\d+-c.*", name):
                continue
            if int(name[1:name.index("-")]) < oldest and name not in keep:
                self.storage.remove(f"{stored}/{name}")
