"""Evolution state: save/load round trip, atomic writes, corrupt files, the PNG, and a small
real evolution (tiny Cognate parents, every candidate built and scored) that resumes from its
saved state exactly as if it had never stopped."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from forge.evolve import (EvolutionState, EvolveSettings, build_candidate, diversity, fitness,
                          generation_generator, initial_population, initial_recipes,
                          next_generation, plot_history, reseed)
from tests.evolve.conftest import load

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def metrics(sd, config) -> dict[str, float]:
    """Next-token bits per token and top-1 accuracy on fixed random token batches, under the
    metric names the fitness reads (a measured proxy: the tiny parents are untrained)."""
    model = load(sd, config)
    out = {}
    for name, seed in (("tasks/answer_bits_per_byte", 0), ("text/bits_per_byte", 1)):
        gen = torch.Generator().manual_seed(seed)
        ids = torch.randint(0, config.vocab_size, (4, 16), generator=gen)
        with torch.no_grad():
            logits = model(ids).logits[:, :-1]
        out[name] = float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                          ids[:, 1:].reshape(-1))) / math.log(2)
        if seed == 0:
            out["tasks/exact_match"] = float((logits.argmax(-1) == ids[:, 1:]).float().mean())
    return out


def run(family, settings, generations, state=None, population=None, built=None, fits=None):
    """Score, record, breed, re-seed: the loop a phase runs (weights kept in `built`)."""
    state = state or EvolutionState.start(settings)
    population = population or initial_population(
        initial_recipes(2, settings, generation_generator(0, 0)))
    built, fits = built if built is not None else {}, fits if fits is not None else {}
    while True:
        gen = population[0].generation
        for c in population:
            built[c.id] = build_candidate(c, family["parents"], family["base"], family["config"],
                                          built, fits)
            fits[c.id] = fitness(metrics(*built[c.id]), settings.fitness)
        scored = [(c, fits[c.id]) for c in population]
        stopped = state.record(gen, scored, diversity(population, settings))
        if stopped or gen >= generations:
            return state, None, built, fits
        g = generation_generator(0, gen + 1)
        population = reseed(next_generation(scored, gen + 1, settings, g), scored,
                            settings.reseed_count, settings, g)


def test_state_round_trip_with_non_finite_numbers(tmp_path, settings):
    pop = initial_population(initial_recipes(2, settings, torch.Generator().manual_seed(0)))
    state = EvolutionState.start(settings)
    scores = [-1.0, float("nan"), -2.0, -math.inf, -0.5, -3.0, -4.0, -5.0]
    state.record(0, list(zip(pop, scores)), diversity(pop, settings))
    path = state.save(tmp_path / "sub" / "evolution.json")
    text = path.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    back = EvolutionState.load(path)
    assert back.to_dict() == state.to_dict()
    assert back.best_id == "g000-c04" and back.best_fitness == -0.5
    assert back.rows == [{"generation": 0, "best": -0.5, "mean": pytest.approx(-15.5 / 6),
                          "diversity": pytest.approx(diversity(pop, settings)), "stopped": False}]
    assert math.isnan(back.population[1][1]) and back.population[3][1] == -math.inf
    assert [p.name for p in path.parent.iterdir()] == ["evolution.json"]  # no temp file left
    assert path.stat().st_mode & 0o777 == 0o644


def test_record_rejects_old_generations(settings):
    pop = initial_population(initial_recipes(2, settings, torch.Generator()))
    state = EvolutionState.start(settings)
    state.record(0, [(c, 0.0) for c in pop], 0.5)
    with pytest.raises(ValueError, match="generation: got 0; allowed: > 0"):
        state.record(0, [(c, 0.0) for c in pop], 0.5)


def test_load_names_the_corrupt_file(tmp_path, settings):
    bad = tmp_path / "evolution.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="evolution.json: not an evolution state"):
        EvolutionState.load(bad)
    good = EvolutionState.start(settings).to_dict()
    bad.write_text(json.dumps({**good, "generation": "3"}))
    with pytest.raises(ValueError, match="EvolutionState.generation: got '3'"):
        EvolutionState.load(bad)
    del good["rows"]
    bad.write_text(json.dumps(good))
    with pytest.raises(ValueError, match="EvolutionState.rows: missing key"):
        EvolutionState.load(bad)


def test_save_failure_leaves_the_old_file(tmp_path, settings, monkeypatch):
    state = EvolutionState.start(settings)
    path = state.save(tmp_path / "evolution.json")
    before = path.read_text()
    state.generation = 3

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr("forge.evolve.history.os.replace", boom)
    with pytest.raises(OSError):
        state.save(path)
    assert path.read_text() == before and len(list(tmp_path.iterdir())) == 1


def test_plot_history_writes_a_png(tmp_path):
    rows = [{"generation": g, "best": -3.0 + 0.1 * g, "mean": -3.5 + 0.1 * g,
             "diversity": 0.7 - 0.1 * g, "stopped": False} for g in range(4)]
    rows[1]["mean"] = -math.inf
    path = plot_history(rows, tmp_path / "plots" / "fitness.png")
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5000
    plain = len(data)
    path = plot_history(rows, path, references={"parent a": -3.2, "parent b": -2.9}, floor=0.2)
    assert path.read_bytes()[:8] == PNG_MAGIC and len(path.read_bytes()) != plain
    assert sorted(p.name for p in path.parent.iterdir()) == ["fitness.png"]
    with pytest.raises(ValueError, match="rows: empty"):
        plot_history([], tmp_path / "x.png")


def test_a_small_evolution_runs_records_and_resumes_exactly(tmp_path, family):
    """3 generations of real candidates (built through forge.merge, scored by a measured loss):
    best-ever never falls; stopping after generation 1, saving and loading the state and
    continuing gives the same rows and champion as the uninterrupted run."""
    settings = EvolveSettings(generations=3)
    full, *_ = run(family, settings, 3)
    assert [r["generation"] for r in full.rows] == [0, 1, 2, 3]
    bests = [r["best"] for r in full.rows]
    assert full.best_fitness == max(bests) and all(math.isfinite(b) for b in bests)
    assert all(0.0 <= r["diversity"] <= 1.0 for r in full.rows)
    assert full.rows[0]["diversity"] > 0.2

    # interrupted after generation 1: only the state file and the last weights survive
    part, _, built, fits = run(family, settings, 1)
    saved = part.save(tmp_path / "evolution.json")
    state = EvolutionState.load(saved)
    scored = state.population
    g = generation_generator(0, 2)
    population = reseed(next_generation(scored, 2, settings, g), scored,
                        settings.reseed_count, settings, g)
    resumed, *_ = run(family, settings, 3, state=state, population=population, built=built,
                      fits=fits)
    assert resumed.to_dict() == full.to_dict()
    assert plot_history(resumed.rows, tmp_path / "fitness.png").read_bytes()[:8] == PNG_MAGIC
