"""Reasoning tasks: disjoint splits, determinism, bad input, the template and the scorer."""
from __future__ import annotations

from collections import Counter

import pytest

from forge.config.data import TaskSpec
from forge.data.errors import DataError
from forge.data.tasks import load_tasks, score, split_seed, split_sizes
from tests.data.fixtures import SMALL_SUMS, small_config, sums_config, tasks


def _questions(examples):
    return [e.question for e in examples]


def test_default_mix_splits_share_no_question():
    t = tasks()
    train, val, test = (set(_questions(x)) for x in (t.train, t.validation, t.test))
    assert len(train) == len(t.train) and len(val) == len(t.validation) and len(test) == len(t.test)
    assert not (train & val) and not (train & test) and not (val & test)
    assert Counter(e.task for e in t.test) == {"chain_sum": 20, "basic_arithmetic": 10,
                                              "leg_counting": 10, "letter_counting": 10,
                                              "word_sorting": 10}


def test_small_question_space_still_disjoint():
    """200 possible questions: held-out splits keep theirs, train gets what is left."""
    t = load_tasks(sums_config(task_train_size=300))
    train, val, test = (set(_questions(x)) for x in (t.train, t.validation, t.test))
    assert len(test) == 60 and len(val) == 60
    assert not (train & val) and not (train & test) and not (val & test)
    assert 0 < len(train) <= 200 - 120


def test_split_seeds_are_far_apart():
    seeds = sorted(split_seed(s, split) for s in range(3) for split in ("train", "validation", "test"))
    assert min(b - a for a, b in zip(seeds, seeds[1:])) >= 1_000_000_000
    assert split_sizes(100, (TaskSpec("a", 2.0), TaskSpec("b", 1.0))) == [67, 34]


def test_same_seed_same_tasks_different_seed_differs():
    a, b = tasks(), load_tasks(small_config())
    assert _questions(a.train) == _questions(b.train) and _questions(a.test) == _questions(b.test)
    c = load_tasks(small_config(seed=7))
    assert _questions(c.test) != _questions(a.test)


def test_template_and_oracle_scores_one():
    t = tasks()
    e = t.validation[0]
    assert e.prompt == f"Question: {e.question.strip()}\nAnswer:" and e.completion == f" {e.answer}"
    assert all(score(x, x.answer) == 1.0 for x in t.validation)


def test_constant_answer_scores_its_share_of_the_data():
    t = load_tasks(sums_config())
    answers = Counter(e.answer for e in t.test)
    constant, hits = answers.most_common(1)[0]
    exact = [score(e, constant) >= 1.0 for e in t.test]
    assert sum(exact) == hits and hits >= 2


def test_unknown_task_names_the_key():
    with pytest.raises(DataError, match=r"data\.tasks\[1\]\.name: unknown task 'no_such_task'"):
        load_tasks(small_config(tasks=(TaskSpec("chain_sum", 1.0, SMALL_SUMS),
                                       TaskSpec("no_such_task"))))


def test_bad_task_setting_names_the_key():
    with pytest.raises(DataError, match=r"data\.tasks\[0\]\.config: chain_sum rejects"):
        load_tasks(small_config(tasks=(TaskSpec("chain_sum", 1.0, {"no_such_setting": 3}),)))
