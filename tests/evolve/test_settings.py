"""EvolveSettings from config data: defaults, nesting, consistent sizes, ranges."""
from __future__ import annotations

import pytest

from forge.config.schema import ConfigError, build, to_dict
from forge.evolve import EvolveSettings, FitnessWeights


def make(data: dict) -> EvolveSettings:
    return build(EvolveSettings, data, "phases.evomerge.evolve")


def test_defaults_are_the_design_numbers():
    s = make({})
    assert (s.population, s.n_elites, s.mutants_per_elite, s.n_loser_groups) == (8, 2, 3, 2)
    assert (s.noise_sigma, s.noise_fraction, s.diversity_floor, s.reseed_count) == \
        (0.01, 0.01, 0.2, 2)
    assert (s.patience, s.min_delta, s.generations, s.max_extra_layers) == (5, 0.001, 50, 0)
    assert s.group_size == 3 and s.fitness == FitnessWeights()
    assert make(to_dict(s)) == s  # YAML round trip


def test_nested_overrides():
    s = make({"generations": 4, "ranges": {"dare_p": [0.2, 0.4]},
              "fitness": {"accuracy": 0.0}})
    assert s.generations == 4 and s.ranges.dare_p == (0.2, 0.4) and s.fitness.accuracy == 0.0


@pytest.mark.parametrize("data, message", [
    ({"population": 10}, "phases.evomerge.evolve.population: got 10; allowed: n_elites"),
    ({"population": 8, "n_elites": 1, "mutants_per_elite": 5, "n_loser_groups": 3},
     "n_loser_groups: got 3; allowed: a divisor of population - n_elites = 7"),
    ({"population": 6}, "population: got 6; allowed: a number >= 8"),
    ({"noise_mutants_per_elite": 4}, "noise_mutants_per_elite: got 4"),
    ({"reseed_count": 9}, "reseed_count: got 9"),
    ({"noise_sigma": 0}, "noise_sigma: got 0.0"),
    ({"diversity_floor": 1.5}, "diversity_floor: got 1.5"),
    ({"ranges": {"density": [0.0, 1.0]}}, "ranges.density: got \\[0.0, 1.0\\]"),
    ({"ranges": {"dare_p": [0.5, 1.0]}}, "ranges.dare_p"),
    ({"ranges": {"slerp_t": [0.8, 0.2]}},
     "ranges.slerp_t: got \\[0.8, 0.2\\]; allowed: low <= high"),
    ({"ranges": {"dfs_scale": [0.0, 2.0]}}, "ranges.dfs_scale"),
    ({"ranges": {"task_scale": [1.0]}},
     "ranges.task_scale: got \\[1.0\\]; allowed: \\[low, high\\]"),
    ({"ranges": {"linear_weight": [0.0, 0.0]}}, "ranges.linear_weight"),
    ({"fitness": {"answer": 0, "text": 0, "accuracy": 0}}, "all 0"),
    ({"fitness": {"answer": -1}}, "fitness.answer: got -1.0"),
    ({"mutation": 1}, "mutation: unknown key"),
])
def test_bad_settings_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        make(data)


def test_consistent_other_sizes():
    s = make({"population": 9, "n_elites": 1, "mutants_per_elite": 5, "n_loser_groups": 4,
              "noise_mutants_per_elite": 0})
    assert s.n_losers == 8 and s.group_size == 2
