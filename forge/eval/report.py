"""Evaluation tables: a summary (metric rows x model columns) and a per-task table."""
from __future__ import annotations

from typing import Mapping

from rich.table import Table

Results = Mapping[str, float]

SUMMARY_ROWS = (("text perplexity", "text/perplexity", ".2f"),
                ("text bits/byte", "text/bits_per_byte", ".4f"),
                ("answer bits/byte", "tasks/answer_bits_per_byte", ".4f"),
                ("exact match [95% CI]", "tasks", "acc"),
                ("parameters", "size/params", ",.0f"),
                ("bytes", "size/bytes", ",.0f"))  # model: its folder on disk; references: tensors


def task_names(results: Results) -> list[str]:
    """Tasks present in `results` (keys task/<name>/...), in first-seen order."""
    return list(dict.fromkeys(k.split("/")[1] for k in results if k.startswith("task/")))


def accuracy_cell(results: Results, prefix: str) -> str:
    """'12.0% [5.1%, 24.2%] n=50' from prefix/exact_match, _low, _high and /n."""
    key = f"{prefix}/exact_match"
    if key not in results:
        return ""
    return (f"{results[key]:.1%} [{results[key + '_low']:.1%}, {results[key + '_high']:.1%}] "
            f"n={int(results[prefix + '/n'])}")


def _cell(results: Results, key: str, fmt: str) -> str:
    if fmt == "acc":
        return accuracy_cell(results, key)
    return format(results[key], fmt) if key in results else ""


def summary_table(columns: Mapping[str, Results], title: str = "forge eval") -> Table:
    """Overall metrics, one column per evaluated model or baseline."""
    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    for label, key, fmt in SUMMARY_ROWS:
        table.add_row(label, *(_cell(r, key, fmt) for r in columns.values()))
    return table


def task_table(columns: Mapping[str, Results], title: str = "per task") -> Table:
    """One row per task: answer bits/byte and exact match [95% CI] of each model column."""
    models = {k: v for k, v in columns.items() if task_names(v)}
    table = Table(title=title)
    table.add_column("task")
    for name in models:
        table.add_column(f"{name} bits/byte", justify="right")
        table.add_column(f"{name} exact match", justify="right")
    for task in task_names(next(iter(models.values()), {})):
        cells = []
        for r in models.values():
            cells += [_cell(r, f"task/{task}/answer_bits_per_byte", ".4f"),
                      accuracy_cell(r, f"task/{task}")]
        table.add_row(task, *cells)
    return table
