"""`forge report`: the Phase 1 specialists' context check and exact match per task."""
from __future__ import annotations

from forge.registry import RegistryStore
from forge.report import report_markdown


def _specialist(gain: float) -> dict:
    m = {"context/prompt_swap_gain": gain, "context/prompt_swap_stderr": 0.05,
         "tasks/answer_bits_per_byte": 2.5}
    for task, em in (("chain_sum", 0.2), ("leg_counting", 0.0)):
        m.update({f"task/{task}/exact_match": em, f"task/{task}/exact_match_low": 0.05,
                  f"task/{task}/exact_match_high": 0.5, f"task/{task}/n": 10.0})
    return m


def test_report_lists_each_specialists_prompt_swap_gain_and_exact_match(tmp_path):
    store = RegistryStore(tmp_path / "registry.db")
    store.create_run("r1", "default", "run: {}")
    attempt = store.start_phase("r1", "cognate")
    store.finish_phase("r1", "cognate", attempt, "done", summary={
        "key_metric": ["val_bits_per_byte", 3.1],
        "details": {"models": {"reasoning": _specialist(0.31), "memory": _specialist(0.12)}}})
    page = report_markdown(store, "r1")
    assert "## Phase 1 specialists (validation)" in page
    assert "| reasoning | +0.310 +- 0.050 | 2.500 | chain_sum 20% [5%, 50%] n=10, " \
           "leg_counting 0% [5%, 50%] n=10 |" in page
    assert "| memory | +0.120 +- 0.050 |" in page


def test_report_without_phase_1_has_no_specialist_table(tmp_path):
    store = RegistryStore(tmp_path / "registry.db")
    store.create_run("r1", "default", "run: {}")
    assert "Phase 1 specialists" not in report_markdown(store, "r1")
