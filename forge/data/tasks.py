"""Reasoning tasks from reasoning-gym: a weighted mix, split by seed with no shared question.

reasoning-gym builds item i of `create_dataset(name, size=n, seed=s)` from seed s + i, so two
datasets whose seeds are closer than their sizes share items (DESIGN.md section 6). Split seeds are
therefore `SPLIT_SEED_GAP` apart (larger than any allowed split size), and questions are
deduplicated across splits with test first, then validation, then train: a question held out is
never trained on.

Every task uses one text template: prompt `"Question: {q}\\nAnswer:"`, answer `" {a}"` + eos.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import reasoning_gym
from reasoning_gym.factory import DATASETS

from forge.config.data import DataConfig, TaskSpec
from forge.data.errors import DataError

PROMPT_TEMPLATE = "Question: {question}\nAnswer:"
ANSWER_TEMPLATE = " {answer}"
SPLIT_ORDER = ("test", "validation", "train")  # held-out splits claim their questions first
SPLIT_SEED_GAP = 1_000_000_000  # > data.task_*_size's upper bound, so split seed ranges never meet
DRAWS_PER_ITEM = 4  # draws tried per wanted item before a small question space gives up


@dataclass(frozen=True)
class TaskExample:
    """One question with its reference answer and the reasoning-gym entry that scores it."""

    task: str
    question: str
    answer: str
    entry: dict[str, Any]

    @property
    def prompt(self) -> str:
        """The prompt text the model sees."""
        return format_prompt(self.question)

    @property
    def completion(self) -> str:
        """The answer text the model should produce after the prompt (eos not included)."""
        return format_answer(self.answer)


@dataclass(frozen=True)
class TaskSplits:
    """Task examples of each split; no question appears in two splits."""

    train: list[TaskExample]
    validation: list[TaskExample]
    test: list[TaskExample]

    def split(self, name: str) -> list[TaskExample]:
        """The examples of split `name` ('train', 'validation' or 'test')."""
        if name not in SPLIT_ORDER:
            raise DataError(f"split: got {name!r}; allowed: train, validation, test")
        return getattr(self, name)


def format_prompt(question: str) -> str:
    """`"Question: {question}\\nAnswer:"`: the one prompt template of every task."""
    return PROMPT_TEMPLATE.format(question=question.strip())


def format_answer(answer: str) -> str:
    """`" {answer}"`: the answer text that follows the prompt (the tokenizer's eos follows it)."""
    return ANSWER_TEMPLATE.format(answer=answer.strip())


def reference_answer(item: dict[str, Any]) -> str:
    """The item's answer; tasks with many right answers (propositional_logic) give an example."""
    answer = item.get("answer")
    if answer is None:
        answer = item.get("metadata", {}).get("example_answer")
    if answer is None:
        raise DataError(f"tasks: {item.get('metadata', {}).get('source_dataset')!r} "
                        "gives items with no answer to train on")
    return str(answer)


def split_sizes(total: int, specs: tuple[TaskSpec, ...]) -> list[int]:
    """Items per task: ceil(total * weight / sum(weights)), so every weighted task appears."""
    weight_sum = sum(s.weight for s in specs)
    return [math.ceil(total * s.weight / weight_sum) if total else 0 for s in specs]


def split_seed(seed: int, split: str) -> int:
    """Seed of `split`: `seed * 3 * SPLIT_SEED_GAP + index(split) * SPLIT_SEED_GAP`."""
    return (seed * len(SPLIT_ORDER) + SPLIT_ORDER.index(split)) * SPLIT_SEED_GAP


def make_dataset(spec: TaskSpec, index: int, size: int, seed: int) -> Any:
    """reasoning-gym's `create_dataset(name, size, seed, **config)`; bad settings -> `DataError`."""
    key = f"data.tasks[{index}]"
    if spec.name not in DATASETS:
        raise DataError(f"{key}.name: unknown task {spec.name!r}; "
                        f"e.g. {', '.join(sorted(DATASETS)[:6])} ({len(DATASETS)} available)")
    try:
        return reasoning_gym.create_dataset(spec.name, size=size, seed=seed, **spec.config)
    except (TypeError, ValueError, AssertionError) as err:
        raise DataError(f"{key}.config: {spec.name} rejects {spec.config!r}: {err}") from err


def draw_unique(spec: TaskSpec, index: int, want: int, seed: int,
                taken: set[str]) -> list[TaskExample]:
    """Up to `want` examples whose questions are new (not in `taken`, not repeated)."""
    if want == 0:
        return []
    dataset = make_dataset(spec, index, want * DRAWS_PER_ITEM, seed)
    out: list[TaskExample] = []
    for i in range(len(dataset)):
        item = dataset[i]
        question = item["question"]
        if question in taken:
            continue
        taken.add(question)
        out.append(TaskExample(spec.name, question, reference_answer(item), item))
        if len(out) == want:
            break
    return out


def load_tasks(cfg: DataConfig) -> TaskSplits:
    """Generate the task mix of `cfg.tasks` for each split, held-out splits first, no overlap."""
    totals = {"train": cfg.task_train_size, "validation": cfg.task_validation_size,
              "test": cfg.task_test_size}
    splits: dict[str, list[TaskExample]] = {s: [] for s in SPLIT_ORDER}
    for index, spec in enumerate(cfg.tasks):
        taken: set[str] = set()
        for split in SPLIT_ORDER:
            want = split_sizes(totals[split], cfg.tasks)[index]
            splits[split] += draw_unique(spec, index, want, split_seed(cfg.seed, split) + index,
                                         taken)
    return TaskSplits(splits["train"], splits["validation"], splits["test"])


def scorer(task: str) -> Callable[[str | None, dict[str, Any]], float]:
    """reasoning-gym's own `score_answer` of `task` (cached: building a dataset costs time)."""
    if task not in _SCORERS:
        if task not in DATASETS:
            raise DataError(f"task: unknown task {task!r}")
        _SCORERS[task] = reasoning_gym.get_score_answer_fn(task)
    return _SCORERS[task]


_SCORERS: dict[str, Callable[[str | None, dict[str, Any]], float]] = {}


def score(example: TaskExample, predicted_text: str) -> float:
    """Score in [0, 1] of `predicted_text` (stripped) by the task's `score_answer`."""
    return float(scorer(example.task)(predicted_text.strip(), example.entry))


def task_texts(examples: list[TaskExample]) -> list[str]:
    """Prompt + answer text of each example, e.g. to train the tokenizer on task text."""
    return [e.prompt + e.completion for e in examples]
