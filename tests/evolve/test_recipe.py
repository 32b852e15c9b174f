"""Recipes: the 8 initial gene combinations, exact dict round trip, bad values named, distance."""
from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
import torch

from forge.config.schema import build
from forge.evolve import (GENES, EvolveSettings, Recipe, initial_recipes, path_slices,
                          random_recipe, recipe_distance, slices_path)


def recipes(n_layers: int = 2, seed: int = 0, **settings) -> list[Recipe]:
    generator = torch.Generator().manual_seed(seed)
    return initial_recipes(n_layers, EvolveSettings(**settings), generator)


def test_initial_recipes_are_the_eight_gene_combinations():
    rs = recipes()
    assert len(rs) == 8 and len(set(rs)) == 8
    assert sorted(r.genes for r in rs) == sorted(itertools.product(*GENES.values()))
    ranges = EvolveSettings().ranges
    for r in rs:  # hyper-parameters inside the configured ranges, plans keep the depth
        low, high = ranges.linear_weight
        assert all(low <= w <= high for w in r.linear_weights)
        assert ranges.density[0] <= r.density <= ranges.density[1]
        assert ranges.dare_p[0] <= r.dare_p <= ranges.dare_p[1]
        assert all(ranges.dfs_scale[0] <= s <= ranges.dfs_scale[1] for s in r.path_scales)
        assert [layer for _, layer in r.path] == [0, 1]
        assert [layer for _, layer in slices_path(r.slices)] == [0, 1]
        assert r.depth == 2


def test_initial_recipes_are_seeded_and_depth_grows_only_when_allowed():
    assert recipes(seed=3) == recipes(seed=3)
    assert recipes(seed=3) != recipes(seed=4)
    grown = [r for seed in range(5) for r in recipes(n_layers=3, seed=seed, max_extra_layers=2)]
    depths = {len(r.path) for r in grown} | {len(slices_path(r.slices)) for r in grown}
    assert depths <= {3, 4, 5} and len(depths) > 1
    for r in grown:  # every parent layer still present, in order
        assert sorted({layer for _, layer in r.path}) == [0, 1, 2]
        assert [layer for _, layer in r.path] == sorted(layer for _, layer in r.path)


def test_more_than_eight_adds_random_recipes_and_fewer_is_rejected():
    rs = recipes(population=10, n_elites=2, mutants_per_elite=4, n_loser_groups=2)
    assert len(rs) == 10
    assert sorted(r.genes for r in rs[:8]) == sorted(itertools.product(*GENES.values()))
    with pytest.raises(ValueError, match="population"):
        recipes(population=7)  # 7 != 2 * 3 + 2
    with pytest.raises(ValueError, match="n_layers"):
        recipes(n_layers=0)


def test_to_dict_round_trips_exactly_through_json():
    for r in recipes(n_layers=3, max_extra_layers=2):
        text = json.dumps(r.to_dict())
        back = Recipe.from_dict(json.loads(text))
        assert back == r and back.to_dict() == r.to_dict()


def test_from_dict_names_the_bad_key():
    good = recipes()[0].to_dict()
    cases = {"interp": "soup", "task": "ties_dare", "layers": 3, "density": 0.0,
             "dare_p": 1.0, "slerp_t": [0.5], "linear_weights": [0, 0, 0],
             "path_scales": [1.0], "path": [[2, 0], [0, 1]], "slices": [[0, 1, 1]],
             "seed": -1, "n_layers": True, "task_scale": float("nan")}
    for key, value in cases.items():
        with pytest.raises(ValueError, match=f"Recipe.{key}"):
            Recipe.from_dict({**good, key: value})
    with pytest.raises(ValueError, match="Recipe.colour: unknown key"):
        Recipe.from_dict({**good, "colour": 1})
    missing = dict(good)
    del missing["density"]
    with pytest.raises(ValueError, match="Recipe.density: missing key"):
        Recipe.from_dict(missing)
    with pytest.raises(ValueError, match="Recipe.slices"):  # a layer the parents lack
        Recipe.from_dict({**good, "slices": [[0, 0, 3]]})


def test_path_slices_is_the_inverse_of_slices_path():
    path = [(0, 0), (0, 1), (1, 2), (1, 2), (0, 3)]
    slices = path_slices(path)
    assert slices == ((0, 0, 2), (1, 2, 3), (1, 2, 3), (0, 3, 4))
    assert slices_path(slices) == path


def test_distance_is_zero_for_equal_recipes_and_one_for_opposite_genes():
    s = EvolveSettings()
    a = recipes()[0]
    assert recipe_distance(a, a, s.ranges) == 0.0
    assert recipe_distance(a, dataclasses.replace(a, seed=a.seed + 1), s.ranges) == 0.0
    # scaling linear weights leaves the normalised weights, so the merge, unchanged
    assert recipe_distance(a, dataclasses.replace(
        a, interp="linear", linear_weights=tuple(2 * w for w in a.linear_weights)), s.ranges) \
        == pytest.approx(recipe_distance(a, dataclasses.replace(a, interp="linear"), s.ranges))
    flipped = {g: [v for v in GENES[g] if v != getattr(a, g)][0] for g in GENES}
    assert recipe_distance(a, dataclasses.replace(a, **flipped), s.ranges) == 1.0
    one = dataclasses.replace(a, task="ties", density=0.2)
    other = dataclasses.replace(one, density=1.0)  # the whole density range apart
    assert recipe_distance(one, other, s.ranges) == pytest.approx((1.0 / 2) / 3)


def test_random_recipe_honours_ranges_from_config():
    s = build(EvolveSettings, {"ranges": {"dare_p": [0.3, 0.3], "slerp_t": [0.25, 0.75]}},
              "evolve")
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        r = random_recipe(2, s, g)
        assert r.dare_p == 0.3 and all(0.25 <= t <= 0.75 for t in r.slerp_t)
