"""One generation step, candidate lineage, diversity and re-seeding."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from forge.evolve import (Candidate, EvolveSettings, candidate_id, diversity,
                          generation_generator, initial_population, initial_recipes,
                          next_generation, recipe_distance, reseed)


def population(seed: int = 0, settings: EvolveSettings | None = None) -> list[Candidate]:
    settings = settings or EvolveSettings()
    return initial_population(initial_recipes(2, settings, torch.Generator().manual_seed(seed)))


def scored_of(candidates, fitnesses=None):
    fitnesses = fitnesses or [-float(i) for i in range(len(candidates))]
    return list(zip(candidates, fitnesses))


def test_initial_population_ids_and_origins():
    pop = population()
    assert [c.id for c in pop] == [f"g000-c{i:02d}" for i in range(8)]
    assert {c.origin for c in pop} == {"init"} and all(c.built_from == "recipe" for c in pop)
    assert candidate_id(3, 5) == "g003-c05"


def test_next_generation_mutates_the_top_two_and_merges_the_losers(settings):
    pop = population()
    fitness = [-2.0, -0.5, -3.0, -1.0, -7.0, -4.0, -6.0, -5.0]  # best: c01, then c03
    nxt = next_generation(scored_of(pop, fitness), 1, settings, torch.Generator().manual_seed(1))
    assert len(nxt) == 8 and [c.id for c in nxt] == [candidate_id(1, i) for i in range(8)]
    assert all(c.generation == 1 for c in nxt)
    mutants = [c for c in nxt if c.origin == "mutant"]
    children = [c for c in nxt if c.origin == "child"]
    assert len(mutants) == 6 and len(children) == 2
    assert [c.sources for c in mutants] == [("g000-c01",)] * 3 + [("g000-c03",)] * 3
    by_id = {c.id: c for c in pop}
    for m in mutants:
        elite = by_id[m.sources[0]]
        if m.noise is not None:  # starts from the elite's weights: same recipe, noise to add
            assert m.built_from == "noise" and m.recipe == elite.recipe
            assert m.noise["sigma"] == settings.noise_sigma
            assert m.noise["fraction"] == settings.noise_fraction
        else:  # rebuilt from the parents with a mutated recipe
            assert m.built_from == "recipe"
            assert recipe_distance(m.recipe, elite.recipe, settings.ranges) > 0
    assert sum(m.noise is not None for m in mutants) == 2  # noise_mutants_per_elite = 1 each
    # children: the 6 losers in rank order, two disjoint triples, best member's recipe
    assert children[0].sources == ("g000-c00", "g000-c02", "g000-c05")
    assert children[1].sources == ("g000-c07", "g000-c06", "g000-c04")
    assert not set(children[0].sources) & set(children[1].sources)
    assert children[0].recipe == by_id["g000-c00"].recipe
    assert all(c.built_from == "group" for c in children)


def test_next_generation_is_deterministic_and_noise_seeds_differ(settings):
    pop = population()
    a = next_generation(scored_of(pop), 1, settings, generation_generator(7, 1))
    b = next_generation(scored_of(pop), 1, settings, generation_generator(7, 1))
    c = next_generation(scored_of(pop), 1, settings, generation_generator(7, 2))
    assert a == b and a != c
    seeds = [m.noise["seed"] for m in a if m.noise]
    assert len(set(seeds)) == len(seeds)


def test_every_mutant_differs_even_with_no_mutation_probability():
    s = EvolveSettings(gene_flip_prob=0.0, recipe_mutation_prob=0.0, layer_mutation_prob=0.0,
                       noise_mutants_per_elite=0)
    pop = population(settings=s)
    for seed in range(5):
        nxt = next_generation(scored_of(pop), 1, s, torch.Generator().manual_seed(seed))
        by_id = {c.id: c for c in pop}
        for m in nxt[:6]:
            assert recipe_distance(m.recipe, by_id[m.sources[0]].recipe, s.ranges) > 0


def test_nan_fitness_ranks_last(settings):
    pop = population()
    fitness = [float("nan"), -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0]
    nxt = next_generation(scored_of(pop, fitness), 1, settings, torch.Generator())
    assert nxt[0].sources == ("g000-c01",) and nxt[3].sources == ("g000-c02",)
    assert nxt[-1].sources[-1] == "g000-c00"


def test_next_generation_rejects_bad_input(settings):
    pop = population()
    with pytest.raises(ValueError, match="scored: got 7 candidates; allowed: population = 8"):
        next_generation(scored_of(pop[:7]), 1, settings, torch.Generator())
    with pytest.raises(ValueError, match="generation: got 0"):
        next_generation(scored_of(pop), 0, settings, torch.Generator())
    with pytest.raises(ValueError, match="repeat"):
        next_generation(scored_of(pop[:7] + pop[:1]), 1, settings, torch.Generator())
    with pytest.raises(ValueError, match="evolve.population"):
        next_generation(scored_of(pop), 1, EvolveSettings(mutants_per_elite=4), torch.Generator())


def test_candidate_round_trip_and_bad_values(settings):
    pop = population()
    nxt = next_generation(scored_of(pop), 1, settings, torch.Generator().manual_seed(0))
    for c in pop + nxt:
        assert Candidate.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    good = nxt[0].to_dict()
    with pytest.raises(ValueError, match="Candidate.origin"):
        Candidate.from_dict({**good, "origin": "clone"})
    with pytest.raises(ValueError, match="Candidate.sources"):
        Candidate.from_dict({**good, "sources": []})
    with pytest.raises(ValueError, match="Candidate.noise"):
        Candidate.from_dict({**good, "noise": {"seed": 1}})
    with pytest.raises(ValueError, match="Candidate.id"):
        Candidate.from_dict({**good, "id": 3})
    with pytest.raises(ValueError, match="Candidate.weights: unknown key"):
        Candidate.from_dict({**good, "weights": None})
    with pytest.raises(ValueError, match="Recipe.interp"):
        Candidate.from_dict({**good, "recipe": {**good["recipe"], "interp": "soup"}})


def test_diversity_bounds(settings):
    pop = population()
    same = [dataclasses.replace(pop[0], id=f"x{i}") for i in range(8)]
    assert diversity(same, settings) == 0.0
    assert diversity(pop, settings) > 0.2
    assert diversity(pop, settings) <= 1.0
    assert diversity(pop[:1], settings) == 0.0


def test_reseed_replaces_the_worst_expected_only_under_the_floor(settings):
    pop = population()
    scored = scored_of(pop)
    nxt = next_generation(scored, 1, settings, torch.Generator().manual_seed(0))
    # above the floor: unchanged
    high = dataclasses.replace(settings, diversity_floor=0.0)
    assert reseed(nxt, scored, 2, high, torch.Generator()) == nxt
    # collapsed population: every recipe the same -> the 2 children (losers' offspring) go
    collapsed = [dataclasses.replace(c, recipe=pop[0].recipe) for c in nxt]
    assert diversity(collapsed, settings) == 0.0 < settings.diversity_floor
    out = reseed(collapsed, scored, 2, settings, torch.Generator().manual_seed(3))
    assert [c.origin for c in out] == ["mutant"] * 6 + ["reseed"] * 2
    assert [c.id for c in out] == [c.id for c in nxt]
    assert all(c.sources == () and c.noise is None for c in out[6:])
    assert diversity(out, settings) > 0.0
    # n = 3: the next worst is a mutant of the second elite (the last slot first on ties)
    out = reseed(collapsed, scored, 3, settings, torch.Generator().manual_seed(3))
    assert [c.origin for c in out].count("reseed") == 3 and out[5].origin == "reseed"


def test_reseed_rejects_bad_input(settings):
    pop = population()
    scored = scored_of(pop)
    nxt = next_generation(scored, 1, settings, torch.Generator())
    with pytest.raises(ValueError, match="n: got 9"):
        reseed(nxt, scored, 9, settings, torch.Generator())
    same = [dataclasses.replace(c, recipe=pop[0].recipe) for c in nxt]
    with pytest.raises(ValueError, match="no fitness for source"):
        reseed(same, scored[:1], 2, settings, torch.Generator())


def test_generations_chain_without_loss_of_structure(settings):
    """Five generations with a synthetic fitness keep the shape: 6 mutants, 2 children, ids."""
    pop = population()
    for gen in range(1, 6):
        scores = [-(recipe.density + recipe.task_scale) for recipe in (c.recipe for c in pop)]
        scored = scored_of(pop, scores)
        nxt = next_generation(scored, gen, settings, generation_generator(0, gen))
        pop = reseed(nxt, scored, settings.reseed_count, settings, generation_generator(0, gen))
        assert [c.id for c in pop] == [candidate_id(gen, i) for i in range(8)]
        assert sum(c.origin == "child" or (c.origin == "reseed" and i >= 6)
                   for i, c in enumerate(pop)) == 2
        assert 0.0 <= diversity(pop, settings) <= 1.0
