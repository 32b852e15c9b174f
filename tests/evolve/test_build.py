"""Building recipes through forge.merge, weight noise and the loser merge on tiny Cognate models."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from forge.evolve import (EvolveSettings, apply_noise, build_recipe, initial_recipes,
                          merge_group, perturb_weights)
from forge.merge import MergeParams, layer_count, merge
from tests.evolve.conftest import load, logits

TIED = ("lm_head.weight", "model.embed_tokens.weight")


def eight(n_layers: int = 2, seed: int = 0, **kw):
    return initial_recipes(n_layers, EvolveSettings(**kw), torch.Generator().manual_seed(seed))


def test_every_initial_recipe_builds_a_model_that_runs(family):
    built = []
    for recipe in eight():
        sd, config = build_recipe(recipe, family["parents"], family["base"], family["config"])
        out = logits(load(sd, config))
        assert out.shape == (2, 12, 320) and torch.isfinite(out).all()
        assert sd[TIED[0]] is sd[TIED[1]]  # the head stays tied
        built.append(sd)
    # the 8 recipes make 8 different models, none equal to a parent
    flat = [torch.cat([v.flatten() for k, v in sorted(sd.items())]) for sd in built]
    parents = [torch.cat([v.flatten() for k, v in sorted(p.items())]) for p in family["parents"]]
    for i, x in enumerate(flat):
        assert all(not torch.equal(x, y) for y in flat[i + 1:] + parents)


def test_build_equals_the_three_stages_composed_on_full_state_dicts(family):
    """Merging only the blocks stage 3 reads gives what the full 3-stage composition gives
    (deterministic stages: linear/slerp and ties; dare's draws follow the keys merged)."""
    parents, base = family["parents"], family["base"]
    for recipe in eight(seed=2):
        if recipe.task != "ties":
            continue
        sd, _ = build_recipe(recipe, parents, base, family["config"])
        if recipe.interp == "linear":
            a = merge("linear", parents, None, MergeParams(weights=recipe.linear_weights))
        else:
            first = merge("slerp", parents[:2], None, MergeParams(t=recipe.slerp_t[0]))
            a = merge("slerp", [first, parents[2]], None, MergeParams(t=recipe.slerp_t[1]))
        b = merge("ties", parents, base, MergeParams(density=recipe.density,
                                                     scale=recipe.task_scale))
        if recipe.layers == "frankenmerge":
            ref = merge("frankenmerge", [a, b], None, MergeParams(slices=recipe.slices))
        else:
            ref = merge("dfs", [a, b], None, MergeParams(path=recipe.path,
                                                         scales=recipe.path_scales))
        assert ref.keys() == sd.keys()
        assert all(torch.equal(ref[k], sd[k]) for k in ref), recipe.genes


def test_build_is_reproducible_from_the_recipe_seed(family):
    dare = next(r for r in eight() if r.task == "dare")
    a, _ = build_recipe(dare, family["parents"], family["base"], family["config"])
    b, _ = build_recipe(dare, family["parents"], family["base"], family["config"])
    c, _ = build_recipe(dataclasses.replace(dare, seed=dare.seed + 1), family["parents"],
                        family["base"], family["config"])
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)  # another drop mask


def neutral(recipe, path_scales=None):
    """Task-vector settings that return the parent when all parents are equal: TIES density 1,
    DARE p 0, lambda 1."""
    return dataclasses.replace(recipe, density=1.0, dare_p=0.0, task_scale=1.0,
                               path_scales=path_scales or recipe.path_scales)


def test_identical_parents_build_the_parent(family):
    """Honest invariants with p0 = p1 = p2 = P and a different base: linear and slerp give P
    for any weights and t's; ties with density 1 and dare with p 0 (lambda 1) give P; so a
    depth-keeping frankenmerge, and dfs with all scales 1, are P (allclose: the weighted mean
    rounds). A dfs scale != 1 is not neutral even then: block(s h) = s h + f(norm(h)) re-weights
    the residual against the block's write, so it changes the logits (checked too)."""
    p = family["parents"][0]
    ref = logits(load(p, family["config"]))
    for recipe in eight():
        ones = neutral(recipe, path_scales=(1.0,) * len(recipe.path))
        sd, config = build_recipe(ones, [p, p, p], family["base"], family["config"])
        assert config.n_layers == 2
        assert all(torch.allclose(sd[k], p[k], atol=1e-6) for k in p), recipe.genes
        assert torch.allclose(logits(load(sd, config)), ref, atol=1e-5), recipe.genes
        if recipe.layers == "dfs":
            sd, config = build_recipe(neutral(recipe), [p, p, p], family["base"], family["config"])
            assert (logits(load(sd, config)) - ref).abs().max() > 1e-5, recipe.path_scales


def test_identical_parents_and_base_build_the_parent_for_any_task_settings(family):
    """With base = the parents, every task vector is 0: any density, p and lambda give P."""
    p = family["parents"][1]
    for recipe in eight():
        ones = dataclasses.replace(recipe, path_scales=(1.0,) * len(recipe.path))
        sd, _ = build_recipe(ones, [p, p, p], p, family["config"])
        assert all(torch.allclose(sd[k], p[k], atol=1e-6) for k in p), recipe.genes


def test_different_parents_do_not_build_a_parent(family):
    """The same neutral recipes over different parents move off every parent."""
    for recipe in eight():
        sd, _ = build_recipe(neutral(recipe), family["parents"], family["base"], family["config"])
        for parent in family["parents"]:
            assert max(float((sd[k] - parent[k]).abs().max()) for k in parent) > 1e-3


def test_grown_plans_build_deeper_models(family):
    deeper = [r for seed in range(4) for r in eight(seed=seed, max_extra_layers=2) if r.depth > 2]
    assert deeper
    for recipe in deeper[:3]:
        sd, config = build_recipe(recipe, family["parents"], family["base"], family["config"])
        assert layer_count(sd) == config.n_layers == recipe.depth
        assert torch.isfinite(logits(load(sd, config))).all()


def test_build_rejects_wrong_parents(family):
    recipe = eight()[0]
    with pytest.raises(ValueError, match="parents: got 2 state dicts; allowed: 3"):
        build_recipe(recipe, family["parents"][:2], family["base"], family["config"])
    with pytest.raises(ValueError, match="Recipe.n_layers: got 3"):
        build_recipe(dataclasses.replace(recipe, n_layers=3, slices=((0, 0, 3),),
                                         path=((0, 0), (0, 1), (0, 2)),
                                         path_scales=(1.0, 1.0, 1.0)),
                     family["parents"], family["base"], family["config"])
    bad = dict(family["parents"][2])
    bad["model.norm.weight"] = torch.ones(3)
    with pytest.raises(ValueError, match="models\\[2\\]"):
        build_recipe(recipe, family["parents"][:2] + [bad], family["base"], family["config"])
    with pytest.raises(ValueError, match="base"):  # base's embedding is never merged: checked
        build_recipe(recipe, family["parents"], bad, family["config"])


def test_perturb_weights_touches_exactly_the_fraction_with_relative_noise(family):
    sd = family["parents"][0]
    out = perturb_weights(sd, 0.01, 0.05, torch.Generator().manual_seed(0))
    assert out.keys() == sd.keys()
    assert out[TIED[0]] is out[TIED[1]]  # tied tensors get one noise and stay tied
    for key, x in sd.items():
        changed = int((out[key] != x).sum())
        k = max(1, round(0.05 * x.numel()))
        assert changed <= k and (changed >= k - 1 or x.numel() < 50), key
        rms = float(x.pow(2).mean().sqrt())
        if rms > 0:  # noise is sigma * rms(x) per entry: 5 sigma bound
            assert float((out[key] - x).abs().max()) < 5 * 0.01 * rms * 1.0001 + 1e-12, key
    big = "model.embed_tokens.weight"
    delta = out[big] - sd[big]
    picked = delta[delta != 0]
    rms = float(sd[big].pow(2).mean().sqrt())
    assert picked.std().item() == pytest.approx(0.01 * rms, rel=0.2)  # 512 draws
    assert all(torch.equal(v, family["parents"][0][k]) for k, v in sd.items())  # input untouched


def test_perturb_weights_is_seeded_and_validated(family):
    sd = family["parents"][0]
    a = apply_noise(sd, {"seed": 5, "sigma": 0.01, "fraction": 0.01})
    b = perturb_weights(sd, 0.01, 0.01, torch.Generator().manual_seed(5))
    c = apply_noise(sd, {"seed": 6, "sigma": 0.01, "fraction": 0.01})
    assert all(torch.equal(a[k], b[k]) for k in sd)
    assert any(not torch.equal(a[k], c[k]) for k in sd)
    with pytest.raises(ValueError, match="sigma"):
        perturb_weights(sd, 0.0, 0.01, torch.Generator())
    with pytest.raises(ValueError, match="fraction"):
        perturb_weights(sd, 0.01, 1.5, torch.Generator())


def test_merge_group_averages_the_members_of_the_best_ones_shape(family):
    cfg = family["config"]
    a, b, c = family["parents"]
    sd, config = merge_group([a, b, c], [cfg] * 3, [-3.0, -1.0, -2.0])
    for k in a:
        assert torch.allclose(sd[k], (a[k] + b[k] + c[k]) / 3, atol=1e-6)
    assert config.n_layers == 2 and sd[TIED[0]] is sd[TIED[1]]
    # a 3-block member cannot be averaged with 2-block ones: left out when it is not the best
    deep = next(r for s in range(4) for r in eight(seed=s, max_extra_layers=1) if r.depth == 3)
    dsd, dcfg = build_recipe(deep, family["parents"], family["base"], cfg)
    sd, config = merge_group([a, dsd, c], [cfg, dcfg, cfg], [-1.0, -5.0, -2.0])
    assert config.n_layers == 2
    assert all(torch.allclose(sd[k], (a[k] + c[k]) / 2, atol=1e-6) for k in a)
    # ... and alone when it is the best (NaN ranks last)
    sd, config = merge_group([a, dsd, c], [cfg, dcfg, cfg], [float("nan"), -5.0, -6.0])
    assert config.n_layers == 3 and all(torch.equal(sd[k], dsd[k]) for k in dsd)
    assert torch.isfinite(logits(load(sd, config))).all()
    with pytest.raises(ValueError, match="merge_group"):
        merge_group([a, b], [cfg] * 3, [0.0, 0.0, 0.0])


def test_noise_mutant_of_a_built_candidate_still_loads(family):
    recipe = eight()[1]
    sd, config = build_recipe(recipe, family["parents"], family["base"], family["config"])
    noisy = apply_noise(sd, {"seed": 1, "sigma": 0.01, "fraction": 0.01})
    assert torch.isfinite(logits(load(noisy, config))).all()
    assert any(not torch.equal(noisy[k], sd[k]) for k in sd)
