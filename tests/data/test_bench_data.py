"""The data benchmark runs at quick size and reports real sizes and speeds."""
from __future__ import annotations

from forge.bench import data as bench


def test_quick_benchmark_measures_sizes_and_speeds():
    m = bench.measure(quick=True)
    assert m["corpus_bytes"] > 300_000 and m["corpus_tokens"] > 50_000
    assert 1.0 < m["bytes_per_token"] < 8.0
    assert all(m[k] > 0 for k in bench.UNITS)
    assert "stdlib_docstrings" in bench.setup(quick=True)["sources"]
