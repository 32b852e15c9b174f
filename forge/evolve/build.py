"""Turn candidates into weights: build a recipe from the parents, add weight noise, merge losers.

All three return plain Cognate state dicts (and configs) through `forge.merge`; nothing here
touches Ray or the disk. See docs/evolve.md for the formulas.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from forge.evolve.population import Candidate
from forge.evolve.recipe import Recipe, slices_path
from forge.merge import MergeParams, StateDict, layer_count, merge, merged_config
from forge.merge.common import check_models
from forge.merge.layers import LAYER_PREFIX
from forge.models import CognateConfig

N_PARENTS = 3


def recipe_generator(recipe: Recipe) -> torch.Generator:
    """The generator a recipe's build draws from (seeded by `recipe.seed`)."""
    return torch.Generator().manual_seed(recipe.seed)


def interp_stage(recipe: Recipe, parents: Sequence[StateDict]) -> StateDict:
    """Stage 1, model A: linear(p0, p1, p2; w) or the chained slerp
    slerp(slerp(p0, p1; t1), p2; t2) (Shoemake 1985; two-model slerp applied twice)."""
    if recipe.interp == "linear":
        return merge("linear", parents, None, MergeParams(weights=recipe.linear_weights))
    t1, t2 = recipe.slerp_t
    first = merge("slerp", parents[:2], None, MergeParams(t=t1))
    return merge("slerp", [first, parents[2]], None, MergeParams(t=t2))


def task_stage(recipe: Recipe, parents: Sequence[StateDict], base: StateDict,
               generator: torch.Generator) -> StateDict:
    """Stage 2, model B: TIES (density, lambda) or DARE-linear (p, lambda) of the parents' task
    vectors from `base`, parents weighted equally."""
    if recipe.task == "ties":
        params = MergeParams(density=recipe.density, scale=recipe.task_scale)
        return merge("ties", parents, base, params)
    params = MergeParams(p=recipe.dare_p, scale=recipe.task_scale)
    return merge("dare_linear", parents, base, params, generator)


def layer_stage(recipe: Recipe, a: StateDict, b: StateDict) -> StateDict:
    """Stage 3 over [A, B]: frankenmerge of `slices` or dfs of `path` with `path_scales`. The
    shared (non-block) tensors come from A: embedding, tied head, norms, halting head."""
    if recipe.layers == "frankenmerge":
        return merge("frankenmerge", [a, b], None, MergeParams(slices=recipe.slices))
    return merge("dfs", [a, b], None, MergeParams(path=recipe.path, scales=recipe.path_scales))


def plan_picks(recipe: Recipe) -> list[tuple[int, int]]:
    """The active layer plan as (model, layer) picks over [A, B]."""
    return list(recipe.path) if recipe.layers == "dfs" else slices_path(recipe.slices)


def needed_keys(sd: Mapping[str, torch.Tensor], layers: set[int], shared: bool) -> StateDict:
    """The part of `sd` a stage must merge: blocks in `layers` (block 0 always: the stacking
    checks shapes against it) and, when `shared`, every non-block tensor."""
    out = {}
    for key, value in sd.items():
        if key.startswith(LAYER_PREFIX):
            if int(key[len(LAYER_PREFIX):].split(".", 1)[0]) in layers | {0}:
                out[key] = value
        elif shared:
            out[key] = value
    return out


def build_recipe(recipe: Recipe, parents: Sequence[StateDict], base: StateDict,
                 config: CognateConfig,
                 generator: torch.Generator | None = None) -> tuple[StateDict, CognateConfig]:
    """The candidate's state dict and config: stage 3 over (stage 1, stage 2) of the parents.

    `parents` are the three Phase-1 models, `base` their shared seed, `config` their config;
    `generator` drives dare's drop (None: `recipe_generator(recipe)`, so a recipe always builds
    the same weights). Each stage merges only what stage 3 reads: A its picked blocks and the
    shared tensors, B its picked blocks (with block 0, which the stacking checks shapes
    against); on the 25m preset this skips B's embedding, half of its parameters. ValueError
    naming `parents`, `base` or the recipe field on bad input.
    """
    if len(parents) != N_PARENTS:
        raise ValueError(f"parents: got {len(parents)} state dicts; allowed: {N_PARENTS} "
                         "(the Phase-1 models)")
    check_models(parents, base)  # every key, though each stage merges only a part
    depth = layer_count(parents[0])
    if depth != recipe.n_layers:
        raise ValueError(f"Recipe.n_layers: got {recipe.n_layers}; the parents have {depth} "
                         "blocks")
    generator = generator if generator is not None else recipe_generator(recipe)
    picks = plan_picks(recipe)
    from_a = {layer for m, layer in picks if m == 0}
    from_b = {layer for m, layer in picks if m == 1}
    a = interp_stage(recipe, [needed_keys(p, from_a, True) for p in parents])
    b = task_stage(recipe, [needed_keys(p, from_b, False) for p in parents],
                   needed_keys(base, from_b, False), generator)
    sd = layer_stage(recipe, a, b)
    return sd, merged_config(config, sd)


def _rms(x: torch.Tensor) -> float:
    return float(x.double().pow(2).mean().sqrt())


def perturb_weights(sd: Mapping[str, torch.Tensor], sigma: float, fraction: float,
                    generator: torch.Generator) -> StateDict:
    """A copy of `sd` with Gaussian noise on a random `fraction` of each floating tensor.

    For a tensor x of n entries: k = max(1, round(fraction * n)) entries chosen uniformly
    without replacement get x_i += sigma * rms(x) * N(0, 1); rms(x) = sqrt(mean x^2) makes sigma
    relative to each tensor's scale (the spec's sigma 0.01 on 1% of weights: 1% noise on norm
    gains near 1 and on projections near 0.02 alike; an all-zero tensor gets none). Integer
    tensors are copied; tensors that alias one another (the tied head) get the same noise and
    stay aliases.
    """
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma: got {sigma!r}; allowed: a finite number > 0")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction: got {fraction!r}; allowed: a number in (0, 1]")
    out: StateDict = {}
    done: dict[tuple, torch.Tensor] = {}
    for key in sorted(sd):  # a fixed order: the same seed gives the same noise
        x = sd[key]
        alias = (x.data_ptr(), x.shape, x.stride())
        if alias in done:
            out[key] = done[alias]
            continue
        y = x.clone()
        if x.is_floating_point() and x.numel():
            flat = y.view(-1)
            k = max(1, round(fraction * flat.numel()))
            picks = torch.randperm(flat.numel(), generator=generator)[:k]
            noise = torch.randn(k, generator=generator, dtype=torch.float32)
            flat[picks] += (sigma * _rms(x) * noise).to(flat.dtype)
        out[key] = done[alias] = y
    return {k: out[k] for k in sd}


def apply_noise(sd: Mapping[str, torch.Tensor], noise: Mapping[str, Any]) -> StateDict:
    """`perturb_weights` with a candidate's `noise` dict {seed, sigma, fraction}."""
    return perturb_weights(sd, float(noise["sigma"]), float(noise["fraction"]),
                           torch.Generator().manual_seed(int(noise["seed"])))


def _shapes(sd: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def merge_group(sds: Sequence[StateDict], configs: Sequence[CognateConfig],
                fitnesses: Sequence[float]) -> tuple[StateDict, CognateConfig]:
    """The child of a loser group: the equal-weight linear average (model soup, Wortsman et
    al., arXiv 2203.05482) of the members whose keys and shapes equal the best member's.

    Members of another depth (a frankenmerge/dfs plan that grew) cannot be averaged with it and
    are left out; the child takes the best member's config. A NaN fitness ranks last.
    """
    if not sds or not len(sds) == len(configs) == len(fitnesses):
        raise ValueError(f"merge_group: got {len(sds)} state dicts, {len(configs)} configs and "
                         f"{len(fitnesses)} fitnesses; allowed: the same number, at least 1")
    ranked = [-math.inf if math.isnan(f) else f for f in fitnesses]
    best = max(range(len(sds)), key=lambda i: (ranked[i], -i))
    shapes = _shapes(sds[best])
    members = [sd for sd in sds if _shapes(sd) == shapes]
    members.sort(key=lambda sd: sd is not sds[best])  # the best first: its aliases are kept
    sd = merge("linear", members, None, MergeParams())
    return sd, merged_config(configs[best], sd)


def build_candidate(candidate: Candidate, parents: Sequence[StateDict], base: StateDict,
                    config: CognateConfig,
                    built: Mapping[str, tuple[StateDict, CognateConfig]] | None = None,
                    fitnesses: Mapping[str, float] | None = None,
                    ) -> tuple[StateDict, CognateConfig]:
    """A candidate's weights by `candidate.built_from`: its recipe from the parents, its elite's
    weights plus noise, or the merge of its loser group. `built` maps earlier candidate ids to
    their (state dict, config) and `fitnesses` to their fitness (the last two cases need them;
    ValueError naming the missing source)."""
    if candidate.built_from == "recipe":
        return build_recipe(candidate.recipe, parents, base, config)
    built, fitnesses = built or {}, fitnesses or {}
    missing = [s for s in candidate.sources if s not in built
               or (candidate.built_from == "group" and s not in fitnesses)]
    if missing:
        raise ValueError(f"{candidate.id}: no weights or fitness for source(s) {missing}")
    if candidate.built_from == "noise":
        sd, cfg = built[candidate.sources[0]]
        return apply_noise(sd, candidate.noise or {}), cfg
    return merge_group([built[s][0] for s in candidate.sources],
                       [built[s][1] for s in candidate.sources],
                       [fitnesses[s] for s in candidate.sources])
