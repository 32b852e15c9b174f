"""Which phases run, and on resume which can be skipped (pure decisions, no I/O of their own)."""
from __future__ import annotations

import json
from typing import Callable, Sequence

from forge.config import ConfigError
from forge.pipeline.artifacts import ModelRef

FINISHED = ("done", "not_adopted")


def select_phases(planned: Sequence[str], spec: str | None) -> list[str]:
    """Phases to run: all of `planned`, a comma list of them, or an inclusive range `a..b`."""
    planned = list(planned)
    if not spec:
        return planned
    if ".." in spec:
        first, _, last = spec.partition("..")
        first, last = first.strip(), last.strip()
        for end in (first, last):
            if end and end not in planned:
                raise ConfigError(f"--phases: {end!r} is not in pipeline.phases ({', '.join(planned)})")
        start = planned.index(first) if first else 0
        stop = planned.index(last) + 1 if last else len(planned)
        if start >= stop:
            raise ConfigError(f"--phases: {spec!r} is an empty range (order: {', '.join(planned)})")
        return planned[start:stop]
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--phases: got {spec!r}; allowed: phase names or a range a..b "
                          f"of pipeline.phases ({', '.join(planned)})")
    for n in names:
        if n not in planned:
            raise ConfigError(f"--phases: {n!r} is not in pipeline.phases ({', '.join(planned)})")
    return [n for n in planned if n in names]


def refs_to_json(refs: Sequence[ModelRef], runs_dir: str) -> list[dict]:
    """Model refs as they are stored in a phase summary (paths relative to the runs dir)."""
    from pathlib import Path

    root = Path(runs_dir).resolve()
    return [{"id": r.id, "path": str(Path(r.path).resolve().relative_to(root)), "digest": r.digest,
             "params": r.params, "metadata": r.metadata} for r in refs]


def refs_from_json(items: list[dict], runs_dir: str) -> list[ModelRef]:
    from pathlib import Path

    return [ModelRef(id=i["id"], path=str(Path(runs_dir).resolve() / i["path"]),
                     digest=i["digest"], params=i["params"], metadata=i.get("metadata", {}))
            for i in items]


def skip_decision(row: dict | None, inputs: Sequence[ModelRef],
                  verify: Callable[[dict], str | None]) -> tuple[bool, str]:
    """Can a resumed run keep this phase's last result? Returns (skip, reason).

    It can when the phase finished, it consumed exactly the models it would get now (same
    digests), and every artifact it produced still matches its sha256 (`verify` returns an error
    message or None).
    """
    if row is None:
        return False, "never ran"
    if row["status"] not in FINISHED:
        return False, f"last attempt {row['attempt']} is {row['status']}"
    summary = json.loads(row.get("summary") or "{}")
    consumed = [(i["id"], i["digest"]) for i in summary.get("inputs", [])]
    if consumed != [(r.id, r.digest) for r in inputs]:
        return False, "its input models changed"
    for out in summary.get("outputs", []):
        problem = verify(out)
        if problem:
            return False, problem
    return True, f"done in attempt {row['attempt']}, artifacts verified"
