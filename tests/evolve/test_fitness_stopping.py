"""The fitness formula and early stopping."""
from __future__ import annotations

import json
import math

import pytest

from forge.config.schema import ConfigError
from forge.evolve import EarlyStop, FitnessWeights, fitness

METRICS = {"tasks/answer_bits_per_byte": 1.25, "text/bits_per_byte": 2.5,
           "tasks/exact_match": 0.125, "tasks/n": 40.0}


def test_fitness_formula_by_hand():
    assert fitness(METRICS) == -1.25 - 2.5 + 0.125
    assert fitness(METRICS, FitnessWeights(answer=2.0, text=0.5, accuracy=4.0)) == \
        -2.0 * 1.25 - 0.5 * 2.5 + 4.0 * 0.125
    assert fitness(METRICS, FitnessWeights(answer=1.0, text=0.0, accuracy=0.0)) == -1.25
    better = {**METRICS, "tasks/answer_bits_per_byte": 1.0}
    assert fitness(better) > fitness(METRICS)  # fewer bits is better


def test_fitness_missing_and_nan_metrics():
    only_answer = {"tasks/answer_bits_per_byte": 0.5}
    with pytest.raises(ValueError, match="missing 'text/bits_per_byte'"):
        fitness(only_answer)
    assert fitness(only_answer, FitnessWeights(text=0.0, accuracy=0.0)) == -0.5
    assert fitness({**METRICS, "text/bits_per_byte": float("nan")}) == -math.inf
    assert fitness({**METRICS, "tasks/answer_bits_per_byte": math.inf}) == -math.inf


def test_fitness_weights_are_checked():
    with pytest.raises(ConfigError, match="FitnessWeights.text: got -1.0"):
        FitnessWeights(text=-1.0)
    with pytest.raises(ValueError, match="all 0"):
        FitnessWeights(0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="FitnessWeights.answer"):
        FitnessWeights(answer=float("inf"))


def test_early_stop_after_patience_stalled_updates():
    stop = EarlyStop(patience=3, min_delta=0.01)
    assert not stop.update(1.0)           # sets the reference
    assert not stop.update(1.005)         # +0.005 <= min_delta: stall 1
    assert not stop.update(1.02)          # +0.02 over 1.0: progress, counter reset
    assert [stop.update(1.025), stop.update(1.0), stop.update(1.029)] == [False, False, True]
    assert stop.stopped and stop.stalled == 3


def test_early_stop_default_and_nan():
    stop = EarlyStop()
    assert (stop.patience, stop.min_delta) == (5, 0.001)
    results = [stop.update(x) for x in [float("nan"), 0.5, 0.5005, 0.5, 0.5, 0.501, 0.5]]
    assert results == [False] * 6 + [True]


def test_early_stop_state_round_trips_mid_evolution():
    stop = EarlyStop(patience=4, min_delta=0.0)
    for x in (-math.inf, 1.0, 1.0):
        stop.update(x)
    back = EarlyStop.from_dict(json.loads(json.dumps(stop.to_dict())))
    assert back.to_dict() == stop.to_dict()
    assert [back.update(1.0) for _ in range(3)] == [False, False, True]
    first = EarlyStop()
    first.update(-math.inf)
    assert EarlyStop.from_dict(json.loads(json.dumps(first.to_dict()))).reference == -math.inf


def test_early_stop_rejects_bad_values():
    with pytest.raises(ValueError, match="EarlyStop.patience"):
        EarlyStop(patience=0)
    with pytest.raises(ValueError, match="EarlyStop.min_delta"):
        EarlyStop(min_delta=-0.1)
    good = EarlyStop().to_dict()
    with pytest.raises(ValueError, match="EarlyStop.stalled: missing key"):
        EarlyStop.from_dict({k: v for k, v in good.items() if k != "stalled"})
    with pytest.raises(ValueError, match="EarlyStop.reference"):
        EarlyStop.from_dict({**good, "reference": "high"})
