"""A candidate's merge recipe: three binary genes and their hyper-parameters.

A recipe is a 3-stage pipeline over the three Phase-1 parents p0, p1, p2 and their shared seed
model (the base):

    stage 1, interp in {linear, slerp}:  A = linear(p0, p1, p2; w)  or  chained slerp
             A = slerp(slerp(p0, p1; t1), p2; t2)
    stage 2, task in {ties, dare}:        B = ties(p0, p1, p2; base, density, lambda)
                                          or dare_linear(p0, p1, p2; base, p, lambda)
    stage 3, layers in {frankenmerge, dfs} over [A, B] (model 0 = A, model 1 = B):
             frankenmerge: the blocks of `slices` (model, start, end) stacked in order
             dfs: the blocks of `path` (model, layer), step j's input scaled by path_scales[j]

The 8 initial recipes are the 2^3 gene combinations (the EvoMerge spec's {linear|slerp} x
{ties|dare} x {frankenmerge|dfs}); every recipe carries the hyper-parameters of all six methods
so that flipping a gene in a mutation finds values ready. `recipe_distance` compares only what
the genes make active. See docs/evolve.md.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch

from forge.evolve.settings import EvolveSettings, RecipeRanges, describe_domain, in_domain

GENES: dict[str, tuple[str, str]] = {"interp": ("linear", "slerp"), "task": ("ties", "dare"),
                                     "layers": ("frankenmerge", "dfs")}


# --- seeded draws (torch.Generator, like the merge methods) ---------------------------------

def uniform(generator: torch.Generator, low: float, high: float) -> float:
    """A float uniform in [low, high)."""
    return low + (high - low) * torch.rand((), generator=generator, dtype=torch.float64).item()


def randint(generator: torch.Generator, low: int, high: int) -> int:
    """An int uniform in [low, high] (both included)."""
    return int(torch.randint(low, high + 1, (), generator=generator).item())


def coin(generator: torch.Generator, p: float) -> bool:
    """True with probability p."""
    return torch.rand((), generator=generator, dtype=torch.float64).item() < p


def normal(generator: torch.Generator) -> float:
    """A standard normal float."""
    return torch.randn((), generator=generator, dtype=torch.float64).item()


# --- the recipe ---------------------------------------------------------------------------

def _fail(name: str, value: object, allowed: str) -> None:
    raise ValueError(f"Recipe.{name}: got {value!r}; allowed: {allowed}")


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_numbers(name: str, values: Any, count: int, domain: str) -> None:
    """ValueError naming `name` unless `values` is a tuple of `count` numbers allowed for the
    continuous gene `domain` (settings.DOMAINS)."""
    if not isinstance(values, tuple) or len(values) != count \
            or not all(_is_number(v) and in_domain(domain, v) for v in values):
        _fail(name, values, f"a list of {count} number(s), each {describe_domain(domain)}")


@dataclass(frozen=True)
class Recipe:
    """Genes (interp, task, layers) plus every method's hyper-parameters; ValueError naming the
    field on any bad value. Layer picks index [A, B]: model 0 = stage 1's A, 1 = stage 2's B."""

    interp: str
    task: str
    layers: str
    n_layers: int
    """Blocks in each parent; picks index layers 0..n_layers-1 of A and B."""
    linear_weights: tuple[float, float, float]
    slerp_t: tuple[float, float]
    """t1 (p0 -> p1) and t2 (slerp(p0, p1; t1) -> p2)."""
    density: float
    dare_p: float
    task_scale: float
    slices: tuple[tuple[int, int, int], ...]
    path: tuple[tuple[int, int], ...]
    path_scales: tuple[float, ...]
    seed: int
    """Seed of the build's random draws (dare's drop mask): the build is reproducible."""

    def __post_init__(self) -> None:
        for gene, allowed in GENES.items():
            if getattr(self, gene) not in allowed:
                _fail(gene, getattr(self, gene), " or ".join(allowed))
        if not _is_int(self.n_layers) or self.n_layers < 1:
            _fail("n_layers", self.n_layers, "an integer >= 1")
        _check_numbers("linear_weights", self.linear_weights, 3, "linear_weight")
        if sum(self.linear_weights) <= 0:
            _fail("linear_weights", self.linear_weights, "weights with a positive sum")
        _check_numbers("slerp_t", self.slerp_t, 2, "slerp_t")
        for name in ("density", "dare_p", "task_scale"):
            value = getattr(self, name)
            if not (_is_number(value) and in_domain(name, value)):
                _fail(name, value, f"a number {describe_domain(name)}")
        self._check_layer_plan()
        if not _is_int(self.seed) or self.seed < 0:
            _fail("seed", self.seed, "an integer >= 0")

    def _check_layer_plan(self) -> None:
        n = self.n_layers
        if not isinstance(self.slices, tuple) or not self.slices or not all(
                isinstance(s, tuple) and len(s) == 3 and all(map(_is_int, s))
                and s[0] in (0, 1) and 0 <= s[1] < s[2] <= n for s in self.slices):
            _fail("slices", self.slices, f"(model in 0/1, start, end) with 0 <= start < end <= {n}")
        if not isinstance(self.path, tuple) or not self.path or not all(
                isinstance(p, tuple) and len(p) == 2 and all(map(_is_int, p))
                and p[0] in (0, 1) and 0 <= p[1] < n for p in self.path):
            _fail("path", self.path, f"(model in 0/1, layer in [0, {n})) picks")
        _check_numbers("path_scales", self.path_scales, len(self.path), "dfs_scale")

    @property
    def genes(self) -> tuple[str, str, str]:
        """(interp, task, layers)."""
        return self.interp, self.task, self.layers

    @property
    def depth(self) -> int:
        """Blocks of the built model."""
        return len(self.path) if self.layers == "dfs" else len(slices_path(self.slices))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (tuples become lists); `from_dict` gives back an equal Recipe."""
        return {f.name: _lists(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """Recipe from `to_dict`'s output; ValueError naming a missing, unknown or bad key."""
        if not isinstance(data, Mapping):
            raise ValueError(f"Recipe: got {type(data).__name__}; allowed: a mapping")
        names = [f.name for f in fields(cls)]
        for key in data:
            if key not in names:
                raise ValueError(f"Recipe.{key}: unknown key; allowed: {', '.join(names)}")
        for key in names:
            if key not in data:
                raise ValueError(f"Recipe.{key}: missing key")
        values = {k: _tuples(data[k]) for k in names}
        for key in ("linear_weights", "slerp_t", "path_scales"):
            values[key] = _floats(values[key])
        for key in ("density", "dare_p", "task_scale"):
            if _is_number(values[key]):
                values[key] = float(values[key])
        return cls(**values)


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _floats(values: Any) -> Any:
    if isinstance(values, tuple) and all(_is_number(v) for v in values):
        return tuple(float(v) for v in values)
    return values


# --- layer plans ----------------------------------------------------------------------------

def slices_path(slices: Sequence[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """[(model, start, end)] -> [(model, layer)], end exclusive."""
    return [(m, layer) for m, start, end in slices for layer in range(start, end)]


def path_slices(path: Sequence[tuple[int, int]]) -> tuple[tuple[int, int, int], ...]:
    """[(model, layer)] -> the fewest (model, start, end) slices: runs of one model with
    consecutive layers."""
    out: list[list[int]] = []
    for m, layer in path:
        if out and out[-1][0] == m and out[-1][2] == layer:
            out[-1][2] += 1
        else:
            out.append([m, layer, layer + 1])
    return tuple(tuple(s) for s in out)  # type: ignore[misc]


def layer_sequence(n_layers: int, max_extra: int, generator: torch.Generator) -> list[int]:
    """Layer indices of a plan: every layer once, in order, plus 0..max_extra repeated layers
    placed next to their copy (SOLAR-style depth up-scaling keeps the order of layers)."""
    extra = randint(generator, 0, max_extra)
    return sorted(list(range(n_layers)) + [randint(generator, 0, n_layers - 1)
                                           for _ in range(extra)])


def random_path(n_layers: int, max_extra: int,
                generator: torch.Generator) -> tuple[tuple[int, int], ...]:
    """(model, layer) picks: `layer_sequence`'s layers, each from A (0) or B (1) at random."""
    return tuple((randint(generator, 0, 1), layer)
                 for layer in layer_sequence(n_layers, max_extra, generator))


# --- sampling -------------------------------------------------------------------------------

def random_recipe(n_layers: int, settings: EvolveSettings, generator: torch.Generator,
                  genes: Sequence[str] | None = None) -> Recipe:
    """A recipe with `genes` (or random ones) and every hyper-parameter uniform in its range."""
    r = settings.ranges
    if genes is None:
        genes = [GENES[g][randint(generator, 0, 1)] for g in GENES]
    path = random_path(n_layers, settings.max_extra_layers, generator)
    weights = tuple(uniform(generator, *r.linear_weight) for _ in range(3))
    slerp_t = tuple(uniform(generator, *r.slerp_t) for _ in range(2))
    return Recipe(
        interp=genes[0], task=genes[1], layers=genes[2], n_layers=n_layers,
        linear_weights=weights, slerp_t=slerp_t,  # type: ignore[arg-type]
        density=uniform(generator, *r.density), dare_p=uniform(generator, *r.dare_p),
        task_scale=uniform(generator, *r.task_scale),
        slices=path_slices(random_path(n_layers, settings.max_extra_layers, generator)),
        path=path, path_scales=tuple(uniform(generator, *r.dfs_scale) for _ in path),
        seed=randint(generator, 0, 2**31 - 1))


def initial_recipes(n_layers: int, settings: EvolveSettings,
                    generator: torch.Generator) -> list[Recipe]:
    """The initial population: the 2^3 gene combinations (in `itertools.product` order of
    `GENES`), then random-gene recipes up to `settings.population`; hyper-parameters uniform in
    `settings.ranges`."""
    settings.check("evolve")
    if not _is_int(n_layers) or n_layers < 1:
        raise ValueError(f"n_layers: got {n_layers!r}; allowed: an integer >= 1")
    combos = list(itertools.product(*GENES.values()))
    out = [random_recipe(n_layers, settings, generator, genes) for genes in combos]
    out += [random_recipe(n_layers, settings, generator)
            for _ in range(settings.population - len(out))]
    return out[:settings.population]


# --- distance -------------------------------------------------------------------------------

def _scaled(a: float, b: float, ranges: RecipeRanges, name: str) -> float:
    return min(1.0, abs(a - b) / ranges.span(name))


def _plan_distance(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> float:
    """Share of positions whose (model, layer) pick differs; a missing position differs."""
    longest = max(len(a), len(b))
    return sum(1 for i in range(longest) if i >= len(a) or i >= len(b) or a[i] != b[i]) / longest


def _scales_distance(a: Sequence[float], b: Sequence[float], ranges: RecipeRanges) -> float:
    """Mean normalised difference of aligned dfs scales; a missing position counts 1."""
    common = sum(_scaled(x, y, ranges, "dfs_scale") for x, y in zip(a, b))
    return (common + abs(len(a) - len(b))) / max(len(a), len(b))


def stage_distances(a: Recipe, b: Recipe, ranges: RecipeRanges) -> tuple[float, float, float]:
    """Per stage, in [0, 1]: 1 when the gene differs, else the mean normalised difference of
    the hyper-parameters that gene makes active (docs/evolve.md, "Diversity")."""
    if a.interp != b.interp:
        interp = 1.0
    elif a.interp == "linear":  # total variation of the normalised weights: the merge's input
        wa, wb = (torch.tensor(r.linear_weights, dtype=torch.float64) for r in (a, b))
        interp = min(1.0, 0.5 * float((wa / wa.sum() - wb / wb.sum()).abs().sum()))
    else:
        interp = sum(_scaled(x, y, ranges, "slerp_t") for x, y in zip(a.slerp_t, b.slerp_t)) / 2
    if a.task != b.task:
        task = 1.0
    else:
        name, attr = ("density", "density") if a.task == "ties" else ("dare_p", "dare_p")
        task = (_scaled(getattr(a, attr), getattr(b, attr), ranges, name)
                + _scaled(a.task_scale, b.task_scale, ranges, "task_scale")) / 2
    if a.layers != b.layers:
        layers = 1.0
    elif a.layers == "frankenmerge":
        layers = _plan_distance(slices_path(a.slices), slices_path(b.slices))
    else:
        layers = (_plan_distance(a.path, b.path)
                  + _scales_distance(a.path_scales, b.path_scales, ranges)) / 2
    return interp, task, layers


def recipe_distance(a: Recipe, b: Recipe, ranges: RecipeRanges) -> float:
    """Mean of the three stage distances, in [0, 1]; 0 for recipes that build the same model
    (the seed is not a gene)."""
    return sum(stage_distances(a, b, ranges)) / 3

