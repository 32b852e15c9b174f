"""Settings of the evolution loop (DESIGN.md section 9, Phase 2), nestable in a phase's config.

    from forge.config.schema import build
    settings = build(EvolveSettings, {"generations": 4, "ranges": {"dare_p": [0.1, 0.5]}},
                     "phases.evomerge.evolve")

Population arithmetic: each generation the `n_elites` best each yield `mutants_per_elite`
mutants and the other `population - n_elites` are averaged in `n_loser_groups` equal groups into
one child each, so population = n_elites * mutants_per_elite + n_loser_groups (2 x 3 + 2 = 8)
and n_loser_groups divides population - n_elites (6 losers in 2 groups of 3).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from forge.config.schema import ConfigError, option
from forge.evolve.fitness import FitnessWeights

# Each continuous gene's hard domain (what the merge method accepts): (low, high, low open,
# high open). A configured range must sit inside it.
DOMAINS = {
    "linear_weight": (0.0, math.inf, False, True),
    "slerp_t": (0.0, 1.0, False, False),
    "density": (0.0, 1.0, True, False),
    "dare_p": (0.0, 1.0, False, True),
    "task_scale": (-math.inf, math.inf, True, True),
    "dfs_scale": (0.0, math.inf, True, True),
}


def in_domain(name: str, value: float) -> bool:
    """Whether `value` is allowed for the continuous gene `name` (see `DOMAINS`)."""
    low, high, low_open, high_open = DOMAINS[name]
    if not math.isfinite(value):
        return False
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    return above and below


def describe_domain(name: str) -> str:
    """'in (0, 1]' style text of the continuous gene `name`'s domain."""
    low, high, low_open, high_open = DOMAINS[name]
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


@dataclass(frozen=True)
class RecipeRanges:
    """[low, high] of each continuous hyper-parameter: initial draws are uniform in it, mutation
    clips to it, and diversity divides differences by high - low."""

    linear_weight: tuple[float, float] = option((0.1, 1.0), "Raw linear weight of each parent "
                                                "(the merge normalises the three).")
    slerp_t: tuple[float, float] = option((0.0, 1.0), "Each of the two chained slerp t's.")
    density: tuple[float, float] = option((0.2, 1.0), "TIES density (fraction kept), in (0, 1].")
    dare_p: tuple[float, float] = option((0.1, 0.7), "DARE drop probability, in [0, 1).")
    task_scale: tuple[float, float] = option((0.5, 1.5), "Lambda on the merged task vector.")
    dfs_scale: tuple[float, float] = option((0.8, 1.25), "DFS input scale of each path step, > 0.")

    def check(self, path: str) -> None:
        """ConfigError naming the range that is not [low, high] inside its gene's domain."""
        for f in fields(self):
            value = getattr(self, f.name)
            where = f"{path}.{f.name}" if path else f.name
            if len(value) != 2 or not all(isinstance(v, (int, float)) for v in value):
                raise ConfigError(f"{where}: got {list(value)!r}; allowed: [low, high]")
            low, high = value
            if not (in_domain(f.name, low) and in_domain(f.name, high) and low <= high):
                raise ConfigError(f"{where}: got {list(value)!r}; allowed: low <= high, both "
                                  f"{describe_domain(f.name)}")
        if self.linear_weight[1] <= 0:
            raise ConfigError(f"{path}.linear_weight: got {list(self.linear_weight)!r}; "
                              "allowed: high > 0 (the weights must not all be 0)")

    def span(self, name: str) -> float:
        """high - low of range `name` (1 when the range is a single point, to divide by)."""
        low, high = getattr(self, name)
        return high - low if high > low else 1.0


@dataclass(frozen=True)
class EvolveSettings:
    """The evolution of Phase 2 (EvoMerge): population, operators, diversity, early stop."""

    population: int = option(8, "Candidates per generation; the first 8 are the 2^3 gene "
                                "combinations, any more are random.", ge=8)
    n_elites: int = option(2, "Best candidates that each yield mutants.", ge=1)
    mutants_per_elite: int = option(3, "Mutants of each elite.", ge=1)
    n_loser_groups: int = option(2, "Groups the other candidates are averaged in (one child "
                                    "each).", ge=1)
    generations: int = option(50, "Most generations evolved after the initial one.", ge=0)
    noise_mutants_per_elite: int = option(1, "Of each elite's mutants, how many start from the "
                                             "elite's own weights plus Gaussian noise (the rest "
                                             "rebuild a perturbed recipe from the parents).",
                                          ge=0)
    noise_sigma: float = option(0.01, "Weight noise: sigma times each tensor's RMS.", gt=0)
    noise_fraction: float = option(0.01, "Weight noise: fraction of each tensor's entries "
                                         "touched.", gt=0, le=1)
    gene_flip_prob: float = option(0.1, "Recipe mutation: probability to flip each binary gene.",
                                   ge=0, le=1)
    recipe_mutation_prob: float = option(0.5, "Recipe mutation: probability to perturb each "
                                              "continuous hyper-parameter.", ge=0, le=1)
    recipe_mutation_scale: float = option(0.1, "Recipe mutation: Gaussian step as a fraction of "
                                               "the hyper-parameter's range.", gt=0)
    layer_mutation_prob: float = option(0.3, "Recipe mutation: probability to re-pick the model "
                                             "of one layer step of the frankenmerge/dfs plan.",
                                        ge=0, le=1)
    max_extra_layers: int = option(0, "Layers a frankenmerge/dfs plan may add to the parents' "
                                      "depth (0: keep the depth).", ge=0)
    diversity_floor: float = option(0.2, "Re-seed when the population's recipe diversity is "
                                         "below this.", ge=0, le=1)
    reseed_count: int = option(2, "Candidates replaced by fresh random recipes on a re-seed.",
                               ge=0)
    patience: int = option(5, "Early stop after this many generations without progress.", ge=1)
    min_delta: float = option(0.001, "Progress = the best fitness rising by more than this.",
                              ge=0)
    ranges: RecipeRanges = option(default_factory=RecipeRanges,
                                  doc="Ranges of the continuous hyper-parameters.")
    fitness: FitnessWeights = option(default_factory=FitnessWeights,
                                     doc="Weights of the validation metrics in the fitness.")

    @property
    def n_losers(self) -> int:
        """Candidates merged into children each generation."""
        return self.population - self.n_elites

    @property
    def group_size(self) -> int:
        """Losers per child."""
        return self.n_losers // self.n_loser_groups

    def check(self, path: str = "evolve") -> None:
        """ConfigError naming the first inconsistent combination (see the module docstring)."""
        where = f"{path}." if path else ""
        made = self.n_elites * self.mutants_per_elite + self.n_loser_groups
        if self.population != made:
            raise ConfigError(f"{where}population: got {self.population}; allowed: n_elites * "
                              f"mutants_per_elite + n_loser_groups = {self.n_elites} * "
                              f"{self.mutants_per_elite} + {self.n_loser_groups} = {made}")
        if self.n_losers < self.n_loser_groups or self.n_losers % self.n_loser_groups:
            raise ConfigError(f"{where}n_loser_groups: got {self.n_loser_groups}; allowed: a "
                              f"divisor of population - n_elites = {self.n_losers}")
        if self.noise_mutants_per_elite > self.mutants_per_elite:
            raise ConfigError(f"{where}noise_mutants_per_elite: got "
                              f"{self.noise_mutants_per_elite}; allowed: <= mutants_per_elite "
                              f"= {self.mutants_per_elite}")
        if self.reseed_count > self.population:
            raise ConfigError(f"{where}reseed_count: got {self.reseed_count}; allowed: <= "
                              f"population = {self.population}")
        self.ranges.check(f"{where}ranges")
