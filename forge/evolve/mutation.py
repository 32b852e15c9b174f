"""Recipe mutation: flip genes, nudge continuous hyper-parameters, re-pick layer steps.

For a recipe r and settings s (all draws from one torch.Generator):

    each binary gene flips with probability s.gene_flip_prob;
    each active continuous value x (range [lo, hi]) is, with probability s.recipe_mutation_prob,
        x' = clip(x + N(0, 1) * s.recipe_mutation_scale * (hi - lo), lo, hi);
    with probability s.layer_mutation_prob one step of the active layer plan changes model
        (A <-> B); with s.max_extra_layers > 0 a repeated layer may also be added or dropped;
    the seed (dare's drop mask) is redrawn.

A mutant must differ from its elite: when the draws left `recipe_distance` at 0, one step of
the active layer plan is forced to change model (always a different model). This is the
Gaussian-perturbation mutation of evolution strategies applied to a merge recipe, as in
Sakana's evolutionary model merge (arXiv 2403.13187, which uses CMA-ES on the same quantities).
"""
from __future__ import annotations

import dataclasses

import torch

from forge.evolve.recipe import (GENES, Recipe, coin, normal, path_slices, randint,
                                 recipe_distance, slices_path)
from forge.evolve.settings import EvolveSettings


def _nudge(x: float, bounds: tuple[float, float], scale: float,
           generator: torch.Generator) -> float:
    low, high = bounds
    return min(high, max(low, x + normal(generator) * scale * (high - low)))


def _flip_genes(recipe: Recipe, prob: float, generator: torch.Generator) -> dict:
    out = {}
    for gene, (first, second) in GENES.items():
        value = getattr(recipe, gene)
        out[gene] = (second if value == first else first) if coin(generator, prob) else value
    return out


def _continuous(recipe: Recipe, genes: dict, settings: EvolveSettings, generator: torch.Generator,
                prob: float) -> dict:
    """The active continuous values, each nudged with probability `prob`."""
    r, scale = settings.ranges, settings.recipe_mutation_scale

    def maybe(x: float, name: str) -> float:
        return _nudge(x, getattr(r, name), scale, generator) if coin(generator, prob) else x

    out: dict = {}
    if genes["interp"] == "linear":
        out["linear_weights"] = tuple(maybe(w, "linear_weight") for w in recipe.linear_weights)
        if sum(out["linear_weights"]) <= 0:  # all clipped to 0: keep the parent's weights
            out["linear_weights"] = recipe.linear_weights
    else:
        out["slerp_t"] = tuple(maybe(t, "slerp_t") for t in recipe.slerp_t)
    if genes["task"] == "ties":
        out["density"] = maybe(recipe.density, "density")
    else:
        out["dare_p"] = maybe(recipe.dare_p, "dare_p")
    out["task_scale"] = maybe(recipe.task_scale, "task_scale")
    if genes["layers"] == "dfs":
        out["path_scales"] = tuple(maybe(s, "dfs_scale") for s in recipe.path_scales)
    return out


def _resize(path: list, scales: list, n_layers: int, max_extra: int,
            generator: torch.Generator) -> None:
    """Add a repeated layer next to its copy, or drop one, within [n_layers, n_layers +
    max_extra] blocks; every layer keeps at least one copy (in place)."""
    grow = len(path) < n_layers + max_extra and (len(path) == n_layers or coin(generator, 0.5))
    if grow:
        i = randint(generator, 0, len(path) - 1)
        path.insert(i + 1, (randint(generator, 0, 1), path[i][1]))
        scales.insert(i + 1, scales[i])
    elif len(path) > n_layers:
        layers = [layer for _, layer in path]
        repeated = [i for i, layer in enumerate(layers) if layers.count(layer) > 1]
        i = repeated[randint(generator, 0, len(repeated) - 1)]
        del path[i], scales[i]


def _layer_plan(recipe: Recipe, genes: dict, scales: tuple[float, ...],
                settings: EvolveSettings, generator: torch.Generator, prob: float) -> dict:
    """The active layer plan (dfs: with `scales`) with, with probability `prob`, one step's
    model flipped and, when depth may grow, a repeated layer added or dropped."""
    dfs = genes["layers"] == "dfs"
    path = list(recipe.path) if dfs else slices_path(recipe.slices)
    steps = list(scales) if dfs else [1.0] * len(path)
    if coin(generator, prob):
        i = randint(generator, 0, len(path) - 1)
        path[i] = (1 - path[i][0], path[i][1])
    if settings.max_extra_layers and coin(generator, prob):
        _resize(path, steps, recipe.n_layers, settings.max_extra_layers, generator)
    if dfs:
        return {"path": tuple(path), "path_scales": tuple(steps)}
    return {"slices": path_slices(path)}


def mutate_recipe(recipe: Recipe, settings: EvolveSettings,
                  generator: torch.Generator) -> Recipe:
    """A mutant of `recipe` at recipe distance > 0 (module docstring)."""
    genes = _flip_genes(recipe, settings.gene_flip_prob, generator)
    changes = {**genes, **_continuous(recipe, genes, settings, generator,
                                      settings.recipe_mutation_prob)}
    scales = changes.get("path_scales", recipe.path_scales)
    changes.update(_layer_plan(recipe, genes, scales, settings, generator,
                               settings.layer_mutation_prob))
    mutant = dataclasses.replace(recipe, **changes, seed=randint(generator, 0, 2**31 - 1))
    if recipe_distance(mutant, recipe, settings.ranges) > 0:
        return mutant
    # Nothing active moved: flip one step of the active plan, which always changes the model.
    forced = _layer_plan(mutant, genes, mutant.path_scales, dataclasses.replace(
        settings, max_extra_layers=0), generator, prob=1.0)
    return dataclasses.replace(mutant, **forced)
