"""`python -m forge.bench merge --quick` times every method and writes its results."""
import json

from forge.bench.__main__ import main
from forge.merge import MERGE_METHODS


def test_merge_bench_quick_times_every_method(tmp_path):
    assert main(["merge", "--quick", "--repeats", "1", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "merge.json").read_text())
    assert set(data["metrics"]) == {f"{m}_s" for m in MERGE_METHODS if m != "dare"}
    assert all(s["min"] > 0 for s in data["metrics"].values())
    assert data["facts"]["models"] == 3 and data["facts"]["params_per_model"] > 500_000
