"""The evolution's persistent state: population with fitness, best-ever candidate, one row per
generation, early-stop state; JSON save/load (atomic) and the fitness/diversity plot.

A phase resumes mid-evolution by loading this file: it holds everything `next_generation`,
`reseed` and `EarlyStop` need. Non-finite numbers (a NaN metric gives fitness -inf) are stored
as the strings "-inf", "inf", "nan" so the file stays strict JSON.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge.evolve.population import Candidate, rank
from forge.evolve.settings import EvolveSettings
from forge.evolve.stopping import EarlyStop

ROW_KEYS = ("generation", "best", "mean", "diversity", "stopped")


def _num(x: float | None) -> float | str | None:
    return x if x is None or math.isfinite(x) else str(float(x))


def _unnum(x: Any, where: str) -> float | None:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float, str)):
        raise ValueError(f"{where}: got {x!r}; allowed: a number")
    try:
        return float(x)
    except ValueError:
        raise ValueError(f"{where}: got {x!r}; allowed: a number") from None


@dataclass
class EvolutionState:
    """Where the evolution stands after `generation` was scored."""

    generation: int = -1
    """The last scored generation (-1: none yet)."""
    population: list[tuple[Candidate, float]] = field(default_factory=list)
    """The last scored generation's candidates with their fitness."""
    best: Candidate | None = None
    """The best candidate ever scored (the champion: elitism lives here)."""
    best_fitness: float | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    """One {generation, best, mean, diversity, stopped} per scored generation."""
    early_stop: dict[str, Any] = field(default_factory=lambda: EarlyStop().to_dict())
    """`EarlyStop.to_dict()`."""

    @classmethod
    def start(cls, settings: EvolveSettings) -> EvolutionState:
        """A fresh state whose early stop uses `settings.patience` and `settings.min_delta`."""
        return cls(early_stop=EarlyStop(settings.patience, settings.min_delta).to_dict())

    @property
    def best_id(self) -> str | None:
        """The champion's candidate id."""
        return self.best.id if self.best is not None else None

    def record(self, generation: int, scored: list[tuple[Candidate, float]],
               diversity: float) -> bool:
        """Add a scored generation: population, best-ever, its row, the early-stop update.
        Returns True when the evolution should stop (the row's `stopped`)."""
        if generation <= self.generation:
            raise ValueError(f"generation: got {generation}; allowed: > {self.generation} "
                             "(the last recorded)")
        if not scored:
            raise ValueError("scored: empty; allowed: at least one candidate")
        ranked = rank(scored)
        top, top_fitness = ranked[0]
        if self.best_fitness is None or top_fitness > self.best_fitness:
            self.best, self.best_fitness = top, top_fitness
        finite = [f for _, f in ranked if math.isfinite(f)]
        stopper = EarlyStop.from_dict(self.early_stop)
        stopped = stopper.update(self.best_fitness)
        self.early_stop = stopper.to_dict()
        self.generation, self.population = generation, list(scored)
        self.rows.append({"generation": generation, "best": top_fitness,
                          "mean": sum(finite) / len(finite) if finite else -math.inf,
                          "diversity": float(diversity), "stopped": stopped})
        return stopped

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON form (non-finite floats as strings)."""
        return {"generation": self.generation,
                "population": [{"candidate": c.to_dict(), "fitness": _num(f)}
                               for c, f in self.population],
                "best": self.best.to_dict() if self.best is not None else None,
                "best_fitness": _num(self.best_fitness),
                "rows": [{**r, "best": _num(r["best"]), "mean": _num(r["mean"])}
                         for r in self.rows],
                "early_stop": self.early_stop}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvolutionState:
        """The state `to_dict` wrote; ValueError naming a missing or bad key."""
        keys = ("generation", "population", "best", "best_fitness", "rows", "early_stop")
        for key in keys:
            if key not in data:
                raise ValueError(f"EvolutionState.{key}: missing key")
        generation = data["generation"]
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < -1:
            raise ValueError(f"EvolutionState.generation: got {generation!r}; allowed: an "
                             "integer >= -1")
        population = [(Candidate.from_dict(p["candidate"]),
                       _unnum(p["fitness"], f"population[{i}].fitness"))
                      for i, p in enumerate(data["population"])]
        rows = []
        for i, row in enumerate(data["rows"]):
            if sorted(row) != sorted(ROW_KEYS):
                raise ValueError(f"EvolutionState.rows[{i}]: got keys {sorted(row)}; allowed: "
                                 f"{list(ROW_KEYS)}")
            rows.append({**row, "best": _unnum(row["best"], f"rows[{i}].best"),
                         "mean": _unnum(row["mean"], f"rows[{i}].mean")})
        EarlyStop.from_dict(data["early_stop"])  # validates
        best = Candidate.from_dict(data["best"]) if data["best"] is not None else None
        return cls(generation=generation, population=population, best=best,
                   best_fitness=_unnum(data["best_fitness"], "best_fitness"), rows=rows,
                   early_stop=dict(data["early_stop"]))

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically: a temp file in the same folder, then os.replace."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; the state is a normal run file
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> EvolutionState:
        """Read what `save` wrote; ValueError naming the file when it is not a valid state."""
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict):
                raise ValueError(f"got {type(data).__name__}; allowed: an object")
            return cls.from_dict(data)
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not an evolution state ({err})") from None


def plot_history(rows: list[dict[str, Any]], path: str | Path,
                 references: Mapping[str, float] | None = None,
                 floor: float | None = None) -> Path:
    """PNG of best and mean fitness (top) and recipe diversity (bottom) per generation.

    `references` (e.g. each parent's validation fitness) are drawn as dashed horizontal lines
    on the fitness plot, `floor` (the diversity floor) on the diversity plot."""
    if not rows:
        raise ValueError("rows: empty; allowed: at least one generation row")
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a file
    import matplotlib.pyplot as plt

    gens = [r["generation"] for r in rows]

    def finite(key: str) -> list[float]:  # -inf (a broken generation) leaves a gap
        return [r[key] if r[key] is not None and math.isfinite(r[key]) else math.nan
                for r in rows]

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(6, 5))
    top.plot(gens, finite("best"), marker="o", label="best")
    top.plot(gens, finite("mean"), marker=".", label="mean")
    for (name, value), style in zip((references or {}).items(), ("--", ":", "-.", (0, (5, 5)))):
        top.axhline(value, color="grey", linestyle=style, linewidth=1, label=name)
    top.set_ylabel("fitness (higher is better)")
    top.legend(fontsize="small")
    bottom.plot(gens, finite("diversity"), marker="o", color="tab:green")
    if floor is not None:
        bottom.axhline(floor, color="tab:red", linestyle="--", linewidth=1, label="floor")
        bottom.legend(fontsize="small")
    bottom.set_ylabel("recipe diversity")
    bottom.set_xlabel("generation")
    bottom.set_ylim(0, 1)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
