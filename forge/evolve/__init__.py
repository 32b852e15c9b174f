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

from forge.evolve.build import (apply_noise, build_candidate, build_recipe, merge_group,
                                perturb_weights, recipe_generator)
from forge.evolve.fitness import FitnessWeights, fitness
from forge.evolve.history import EvolutionState, plot_history
from forge.evolve.mutation import mutate_recipe
from forge.evolve.population import (Candidate, candidate_id, diversity, generation_generator,
                                     initial_population, next_generation, rank, reseed)
from forge.evolve.recipe import (GENES, Recipe, initial_recipes, path_slices, random_recipe,
                                 recipe_distance, slices_path)
from forge.evolve.settings import EvolveSettings, RecipeRanges
from forge.evolve.stopping import EarlyStop

__all__ = ["Candidate", "EarlyStop", "EvolutionState", "EvolveSettings", "FitnessWeights",
           "GENES", "Recipe", "RecipeRanges", "apply_noise", "build_candidate", "build_recipe",
           "candidate_id", "diversity", "fitness", "generation_generator", "initial_population",
           "initial_recipes", "merge_group", "mutate_recipe", "next_generation", "path_slices",
           "perturb_weights", "plot_history", "random_recipe", "rank", "recipe_distance",
           "recipe_generator", "reseed", "slices_path"]
