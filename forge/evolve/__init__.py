"""Phase 2 evolution library (pure Python/PyTorch, no Ray): recipes of three merge stages,
building them through `forge.merge`, the population step (elites mutate, losers merge),
diversity and re-seeding, early stop, fitness, persisted history. See docs/evolve.md.

    recipes = initial_recipes(n_layers, settings, torch.Generator().manual_seed(seed))
    population = initial_population(recipes)
    sd, cfg = build_candidate(c, parents, base, config, built, fitnesses)  # per candidate
    state.record(gen, scored, diversity(population, settings))       # after scoring
    population = reseed(next_generation(scored, gen + 1, settings, g), scored,
                        settings.reseed_count, settings, g)
"""
from __future__ import annotations

import importlib

# Light and eager: `fitness` is also the name of its submodule, so bind the function now (a later
# import of forge.evolve.fitness would otherwise leave the module under that name).
from forge.evolve.fitness import FitnessWeights, fitness

# Public name -> submodule. Loaded on first use (PEP 562): the config loader imports
# forge.evolve.settings, and must not pull in torch and the model through build.py.
_EXPORTS = {
    "apply_noise": "build", "build_candidate": "build", "build_recipe": "build",
    "merge_group": "build", "perturb_weights": "build", "recipe_generator": "build",
    "EvolutionState": "history", "plot_history": "history",
    "mutate_recipe": "mutation",
    "Candidate": "population", "candidate_id": "population", "diversity": "population",
    "generation_generator": "population", "initial_population": "population",
    "next_generation": "population", "rank": "population", "reseed": "population",
    "GENES": "recipe", "Recipe": "recipe", "initial_recipes": "recipe", "path_slices": "recipe",
    "random_recipe": "recipe", "recipe_distance": "recipe", "slices_path": "recipe",
    "EvolveSettings": "settings", "RecipeRanges": "settings",
    "EarlyStop": "stopping",
}
__all__ = sorted([*_EXPORTS, "FitnessWeights", "fitness"])


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'forge.evolve' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
