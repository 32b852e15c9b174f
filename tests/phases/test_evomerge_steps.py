"""Phase 2's generation bookkeeping: persisted after each generation, resumed exactly."""
import json

import pytest

from forge.config import load_dict
from forge.evolve.run import Evolution


def settings(**evolve):
    cfg = load_dict({"phases": {"evomerge": {"evolve": {"generations": 3, **evolve}}}})
    return cfg.phase("evomerge")


def score(population):
    """A deterministic stand-in fitness (the real one needs models; see the phase test)."""
    return [(c, -sum(c.recipe.linear_weights) - c.recipe.density - 0.01 * i)
            for i, c in enumerate(population)]


def make(tmp_path, fingerprint="fp", **evolve):
    return Evolution(settings(**evolve), seed=0, n_layers=2, state_path=tmp_path / "state.json",
                     candidates_dir=tmp_path / "candidates", fingerprint=fingerprint)


def test_a_resumed_evolution_continues_exactly_where_it_stopped(tmp_path):
    straight = make(tmp_path / "a")
    first = straight.population()
    assert len(first) == 8 and {c.generation for c in first} == {0}
    second = straight.advance(score(first))
    third = straight.advance(score(second))

    interrupted = make(tmp_path / "b")
    assert interrupted.advance(score(interrupted.population())) == second
    resumed = make(tmp_path / "b")  # a new attempt of the phase, same parents and settings
    assert resumed.resumed_from == 1 and resumed.population() == second
    assert resumed.advance(score(resumed.population())) == third
    assert json.loads((tmp_path / "b" / "state.json").read_text())["state"]["generation"] == 1


def test_other_parents_or_settings_start_over(tmp_path):
    evo = make(tmp_path)
    evo.advance(score(evo.population()))
    again = make(tmp_path, fingerprint="other parents")
    assert again.resumed_from == 0 and {c.generation for c in again.population()} == {0}


def test_the_evolution_ends_after_its_generations_and_keeps_the_best(tmp_path):
    evo = make(tmp_path, generations=1)
    nxt = evo.advance(score(evo.population()))
    assert nxt is not None and not evo.finished()
    assert evo.advance(score(nxt)) is None and evo.finished()
    rows = evo.state.rows
    assert [r["generation"] for r in rows] == [0, 1]
    assert evo.state.best_fitness == max(r["best"] for r in rows)
    chain = evo.ancestry(evo.state.best_id)
    assert chain[0]["candidate"]["id"] == evo.state.best_id
    assert {s for item in chain for s in item["candidate"]["sources"]} <= {i["candidate"]["id"] for i in chain}


def test_old_candidate_weights_are_collected_but_the_best_stays(tmp_path):
    evo = make(tmp_path, generations=4)
    pop = evo.population()
    for gen in range(4):
        for c in pop:
            (tmp_path / "candidates" / c.id).mkdir(parents=True)
        pop = evo.advance(score(pop))
    kept = {p.name for p in (tmp_path / "candidates").iterdir()}
    assert {name[:4] for name in kept} <= {"g002", "g003"} | {evo.state.best_id[:4]}
    assert evo.state.best_id in kept


def test_an_inconsistent_population_is_refused_by_the_config():
    with pytest.raises(Exception, match="population: got 9"):
        settings(population=9)
