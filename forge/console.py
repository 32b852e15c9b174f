"""What `forge.submit` prints: run header, one progress line per phase step, the summary table."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table


@dataclass
class PhaseReport:
    """One row of the final table."""

    phase: str
    status: str  # done, not_adopted, skipped, failed
    wall_s: float = 0.0
    key_metric: tuple[str, float] | None = None
    size_bytes: int = 0
    attempt: int = 0
    note: str = ""


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n} B"


class RunReporter:
    """Prints progress; a line per change of step or note, throttled so long phases stay
    readable."""

    def __init__(self, console: Console | None = None, min_interval_s: float = 2.0):
        self.console = console or Console(file=sys.stdout, highlight=False,
                                          width=None if sys.stdout.isatty() else 160)
        self.min_interval_s = min_interval_s
        self._last: dict[str, tuple[float, int, str | None]] = {}

    def header(self, run_id: str, dashboard_url: str | None, plan: list[str], runs_dir: str,
               job_id: str | None = None) -> None:
        self.console.print(f"run id: {run_id}", markup=False)
        if job_id:
            self.console.print(f"ray job: {job_id}", markup=False)
        self.console.print(f"runs dir: {runs_dir}", markup=False)
        self.console.print(f"dashboard: {dashboard_url or '(not running)'}", markup=False)
        self.console.print(f"plan: {' -> '.join(plan) or '(empty)'}", markup=False)

    def phase_started(self, phase: str, attempt: int, why: str = "") -> None:
        """`why`: the reason a resumed run runs the phase again (missing artifact, ...)."""
        self.console.print(f"[{phase}] started (attempt {attempt}{': ' + why if why else ''})",
                           markup=False)

    def note(self, text: str) -> None:
        """A line about the run itself (a run file rebuilt on resume, ...)."""
        self.console.print(text, markup=False)

    def phase_skipped(self, phase: str, reason: str) -> None:
        self.console.print(f"[{phase}] skipped: {reason}", markup=False)

    def progress(self, phase: str, done: int, total: int, note: str = "") -> None:
        now = time.monotonic()
        last_t, last_done, last_note = self._last.get(phase, (0.0, -1, None))
        changed = done != last_done or note != last_note  # a new note alone is news too
        if not changed or (now - last_t < self.min_interval_s and done < total):
            return
        self._last[phase] = (now, done, note)
        width = 20
        filled = int(width * done / total) if total else 0
        bar = "#" * filled + "." * (width - filled)
        self.console.print(f"[{phase}] [{bar}] {done}/{total} {note}".rstrip(), markup=False)

    def phase_finished(self, report: PhaseReport) -> None:
        metric = f", {report.key_metric[0]}={report.key_metric[1]:.4g}" if report.key_metric else ""
        note = f" ({report.note})" if report.note else ""
        self.console.print(f"[{report.phase}] {report.status} in {report.wall_s:.1f}s{metric}{note}",
                           markup=False)

    def summary(self, reports: list[PhaseReport]) -> None:
        table = Table(title="run summary")
        for col in ("phase", "status", "wall time", "key metric", "size"):
            table.add_column(col)
        for r in reports:
            metric = f"{r.key_metric[0]} = {r.key_metric[1]:.4g}" if r.key_metric else "-"
            table.add_row(r.phase, r.status, f"{r.wall_s:.1f} s", metric,
                          human_bytes(r.size_bytes) if r.size_bytes else "-")
        self.console.print(table)
