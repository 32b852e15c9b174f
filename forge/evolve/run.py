"""The generation loop as a persisted state machine (`Evolution`), shared by every executor of
Phase 2: score `population()`, hand the scores to `advance`, repeat until it returns None."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from forge.evolve.history import EvolutionState
from forge.evolve.population import (Candidate, diversity, generation_generator,
                                     initial_population, next_generation, reseed)
from forge.evolve.recipe import initial_recipes
from forge.storage import RunStorage

if TYPE_CHECKING:
    from forge.phases.evomerge_config import EvoMergePhaseConfig


def _json_num(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


class Evolution:
    """The generation loop's state machine, persisted after every generation.

    `population()` is what to score now; `advance(scored)` records a scored generation and
    returns the next population, or None when the run is over (generations used up or the best
    fitness stalled). A state file from an earlier attempt with the same fingerprint is resumed:
    the next generation is recomputed from it exactly (seeded per generation).
    """

    def __init__(self, settings: "EvoMergePhaseConfig", seed: int, n_layers: int, state_path: Path,
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
