"""The population: candidates, one generation step (elites mutate, losers merge), diversity,
re-seeding.

Each generation, ranked by fitness (higher is better; NaN ranks last; ties keep input order):

    top n_elites (2)      -> mutants_per_elite (3) mutants each:
                             the first noise_mutants_per_elite (1) take the elite's own weights
                             plus Gaussian noise (origin "mutant", recipe unchanged, noise set);
                             the rest rebuild a mutated recipe from the parents (noise None)
    the rest (6 losers)   -> n_loser_groups (2) groups of consecutive ranks (3 each), each
                             averaged into one child (origin "child", sources = the group,
                             recipe = the group's best member's, which fixes its shapes)

How the caller makes a candidate's weights (`Candidate.built_from`):
    "recipe":  build_recipe(recipe, parents, base, config)          (init, reseed, recipe mutant)
    "noise":   apply_noise(weights of sources[0], noise)            (weight-noise mutant)
    "group":   merge_group(weights of sources, configs, fitnesses)  (child)

Elites are not copied into the next generation (2 x 3 + 2 = 8 leaves no slot); the best
candidate ever seen is kept by `EvolutionState` (history.py), so the champion never gets worse.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import torch

from forge.evolve.mutation import mutate_recipe
from forge.evolve.recipe import Recipe, randint, random_recipe, recipe_distance
from forge.evolve.settings import EvolveSettings

Origin = Literal["init", "mutant", "child", "reseed"]
ORIGINS = ("init", "mutant", "child", "reseed")
NOISE_KEYS = ("seed", "sigma", "fraction")


def generation_generator(seed: int, generation: int) -> torch.Generator:
    """The generator for making `generation` from run seed `seed`: seeding per generation (not
    one stream for the whole run) lets a resumed evolution draw exactly what an uninterrupted
    one would have."""
    return torch.Generator().manual_seed(seed * 1_000_003 + generation)


def candidate_id(generation: int, index: int) -> str:
    """'g003-c05': candidate `index` of `generation`."""
    return f"g{generation:03d}-c{index:02d}"


@dataclass(frozen=True)
class Candidate:
    """One member of a generation and where it came from (its lineage)."""

    id: str
    generation: int
    origin: Origin
    recipe: Recipe
    sources: tuple[str, ...] = ()
    """Candidate ids it came from: the elite (mutant) or the loser group, best first (child)."""
    noise: dict | None = None
    """Weight-noise mutants only: {seed, sigma, fraction} for `build.apply_noise`."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"Candidate.id: got {self.id!r}; allowed: a non-empty string")
        if not isinstance(self.sources, tuple) or not all(isinstance(s, str)
                                                          for s in self.sources):
            raise ValueError(f"Candidate.sources: got {self.sources!r}; allowed: candidate ids")
        if self.origin not in ORIGINS:
            raise ValueError(f"Candidate.origin: got {self.origin!r}; allowed: "
                             f"{', '.join(ORIGINS)}")
        if not isinstance(self.recipe, Recipe):
            raise ValueError(f"Candidate.recipe: got {type(self.recipe).__name__}; allowed: "
                             "a Recipe")
        if isinstance(self.generation, bool) or not isinstance(self.generation, int) \
                or self.generation < 0:
            raise ValueError(f"Candidate.generation: got {self.generation!r}; allowed: an "
                             "integer >= 0")
        if self.noise is not None and (not isinstance(self.noise, Mapping)
                                       or sorted(self.noise) != sorted(NOISE_KEYS)):
            raise ValueError(f"Candidate.noise: got {self.noise!r}; allowed: null or "
                             f"{{{', '.join(NOISE_KEYS)}}}")
        needs = {"mutant": 1, "child": None}.get(self.origin, 0)
        if needs == 0 and self.sources or needs == 1 and len(self.sources) != 1 \
                or needs is None and not self.sources:
            raise ValueError(f"Candidate.sources: got {self.sources!r} for origin "
                             f"{self.origin!r}; allowed: none for init/reseed, one elite for "
                             "a mutant, the loser group for a child")
        if self.noise is not None and self.origin != "mutant":
            raise ValueError(f"Candidate.noise: set on a {self.origin!r}; allowed: mutants only")

    @property
    def built_from(self) -> str:
        """'recipe', 'noise' or 'group': how to make its weights (module docstring)."""
        if self.origin == "child":
            return "group"
        return "noise" if self.noise is not None else "recipe"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; `from_dict` gives back an equal Candidate."""
        return {"id": self.id, "generation": self.generation, "origin": self.origin,
                "recipe": self.recipe.to_dict(), "sources": list(self.sources),
                "noise": dict(self.noise) if self.noise is not None else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        """Candidate from `to_dict`'s output; ValueError naming a missing or unknown key."""
        names = [f.name for f in fields(cls)]
        if not isinstance(data, Mapping):
            raise ValueError(f"Candidate: got {type(data).__name__}; allowed: a mapping")
        for key in data:
            if key not in names:
                raise ValueError(f"Candidate.{key}: unknown key; allowed: {', '.join(names)}")
        missing = [k for k in names if k not in data]
        if missing:
            raise ValueError(f"Candidate.{missing[0]}: missing key")
        if not isinstance(data["sources"], (list, tuple)):
            raise ValueError(f"Candidate.sources: got {data['sources']!r}; allowed: a list")
        return cls(id=data["id"], generation=data["generation"], origin=data["origin"],
                   recipe=Recipe.from_dict(data["recipe"]), sources=tuple(data["sources"]),
                   noise=dict(data["noise"]) if data["noise"] is not None else None)


def rank(scored: Sequence[tuple[Candidate, float]]) -> list[tuple[Candidate, float]]:
    """Best first; NaN fitness counts as -inf; equal fitness keeps the input order."""
    clean = [(c, -math.inf if math.isnan(f) else float(f)) for c, f in scored]
    order = sorted(range(len(clean)), key=lambda i: (-clean[i][1], i))
    return [clean[i] for i in order]


def _check_scored(scored: Sequence[tuple[Candidate, float]], settings: EvolveSettings) -> None:
    if len(scored) != settings.population:
        raise ValueError(f"scored: got {len(scored)} candidates; allowed: population = "
                         f"{settings.population}")
    ids = [c.id for c, _ in scored]
    if len(set(ids)) != len(ids):
        raise ValueError(f"scored: candidate ids repeat: {sorted(ids)}")


def _mutants(elite: Candidate, generation: int, first: int, settings: EvolveSettings,
             generator: torch.Generator) -> list[Candidate]:
    out = []
    for j in range(settings.mutants_per_elite):
        cid = candidate_id(generation, first + j)
        if j < settings.noise_mutants_per_elite:
            noise = {"seed": randint(generator, 0, 2**31 - 1), "sigma": settings.noise_sigma,
                     "fraction": settings.noise_fraction}
            out.append(Candidate(cid, generation, "mutant", elite.recipe, (elite.id,), noise))
        else:
            recipe = mutate_recipe(elite.recipe, settings, generator)
            out.append(Candidate(cid, generation, "mutant", recipe, (elite.id,)))
    return out


def next_generation(scored: Sequence[tuple[Candidate, float]], generation: int,
                    settings: EvolveSettings, generator: torch.Generator) -> list[Candidate]:
    """The next population from the scored one (module docstring): n_elites * mutants_per_elite
    mutants, then one child per loser group; ids `candidate_id(generation, 0..population-1)`.

    `generation` is the number of the generation being made (> every scored candidate's).
    """
    settings.check("evolve")
    _check_scored(scored, settings)
    if any(c.generation >= generation for c, _ in scored):
        raise ValueError(f"generation: got {generation}; allowed: > the scored candidates' "
                         f"generations (max {max(c.generation for c, _ in scored)})")
    ranked = [c for c, _ in rank(scored)]
    out: list[Candidate] = []
    for elite in ranked[:settings.n_elites]:
        out += _mutants(elite, generation, len(out), settings, generator)
    losers = ranked[settings.n_elites:]
    for g in range(settings.n_loser_groups):
        group = losers[g * settings.group_size:(g + 1) * settings.group_size]
        out.append(Candidate(candidate_id(generation, len(out)), generation, "child",
                             group[0].recipe, tuple(c.id for c in group)))
    return out


def initial_population(recipes: Sequence[Recipe]) -> list[Candidate]:
    """Generation 0: one "init" candidate per recipe (from `initial_recipes`)."""
    return [Candidate(candidate_id(0, i), 0, "init", r) for i, r in enumerate(recipes)]


def diversity(candidates: Sequence[Candidate], settings: EvolveSettings | None = None) -> float:
    """Mean pairwise `recipe_distance` of the candidates' recipes, in [0, 1]: 0 when all
    recipes are equal, 1 when every pair differs in all three genes. Fewer than 2: 0."""
    ranges = (settings or EvolveSettings()).ranges
    pairs = list(itertools.combinations([c.recipe for c in candidates], 2))
    if not pairs:
        return 0.0
    return sum(recipe_distance(a, b, ranges) for a, b in pairs) / len(pairs)


def reseed(candidates: Sequence[Candidate], scored: Sequence[tuple[Candidate, float]], n: int,
           settings: EvolveSettings, generator: torch.Generator) -> list[Candidate]:
    """Replace the worst `n` of a new generation by fresh random recipes when its diversity is
    below `settings.diversity_floor`; otherwise return the candidates unchanged.

    `candidates` is the generation `next_generation` just made from `scored`, not yet
    evaluated, so "worst" is its expected fitness: the best fitness among its sources in
    `scored` (children of the losers come last; ties replace the later slot first). A
    replacement keeps the slot's id, has origin "reseed", no sources and random genes.
    """
    settings.check("evolve")
    if not 0 <= n <= len(candidates):
        raise ValueError(f"n: got {n}; allowed: 0..{len(candidates)} (the population)")
    if n == 0 or diversity(candidates, settings) >= settings.diversity_floor:
        return list(candidates)
    fitness = {c.id: (-math.inf if math.isnan(f) else f) for c, f in scored}
    missing = sorted({s for c in candidates for s in c.sources} - set(fitness))
    if missing:
        raise ValueError(f"scored: no fitness for source candidate(s) {missing}")

    def expected(i: int) -> float:
        sources = candidates[i].sources
        return max(fitness[s] for s in sources) if sources else math.inf

    worst = sorted(range(len(candidates)), key=lambda i: (expected(i), -i))[:n]
    out = list(candidates)
    for i in worst:
        old = candidates[i]
        recipe = random_recipe(old.recipe.n_layers, settings, generator)
        out[i] = Candidate(old.id, old.generation, "reseed", recipe)
    return out
