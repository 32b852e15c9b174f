"""Recipe mutation: always a different, valid recipe inside the configured ranges and depth."""
from __future__ import annotations

import torch

from forge.evolve import (EvolveSettings, initial_recipes, mutate_recipe, recipe_distance,
                          slices_path)


def test_mutants_are_valid_differ_and_stay_in_range_and_depth():
    s = EvolveSettings(max_extra_layers=2, gene_flip_prob=0.3, layer_mutation_prob=0.5)
    g = torch.Generator().manual_seed(0)
    recipes = initial_recipes(3, s, g)
    depths, flips = set(), 0
    for _ in range(25):
        recipes = [mutate_recipe(r, s, g) for r in recipes]  # chains of mutations
        for r in recipes:
            assert s.ranges.density[0] <= r.density <= s.ranges.density[1]
            assert s.ranges.dare_p[0] <= r.dare_p <= s.ranges.dare_p[1]
            assert all(s.ranges.dfs_scale[0] <= x <= s.ranges.dfs_scale[1] for x in r.path_scales)
            for plan in (r.path, slices_path(r.slices)):
                layers = [layer for _, layer in plan]
                assert sorted(set(layers)) == [0, 1, 2] and layers == sorted(layers)
                assert 3 <= len(plan) <= 5
            depths.add(r.depth)
    assert depths == {3, 4, 5}
    for r in initial_recipes(3, s, g):
        m = mutate_recipe(r, s, g)
        assert recipe_distance(m, r, s.ranges) > 0
        flips += m.genes != r.genes
    assert flips > 0


def test_mutation_scale_bounds_the_step():
    s = EvolveSettings(gene_flip_prob=0.0, recipe_mutation_prob=1.0, recipe_mutation_scale=0.01,
                       layer_mutation_prob=0.0)
    g = torch.Generator().manual_seed(1)
    for r in initial_recipes(2, s, g):
        m = mutate_recipe(r, s, g)
        assert m.genes == r.genes
        assert abs(m.task_scale - r.task_scale) <= 6 * 0.01 * 1.0  # 6 sigma of a range-1 step
        assert 0 < recipe_distance(m, r, s.ranges) < 0.1


def test_mutation_is_seeded():
    s = EvolveSettings()
    r = initial_recipes(2, s, torch.Generator().manual_seed(0))[3]
    a = mutate_recipe(r, s, torch.Generator().manual_seed(9))
    b = mutate_recipe(r, s, torch.Generator().manual_seed(9))
    assert a == b
