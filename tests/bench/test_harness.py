"""The benchmark harness: repeats, summarises, writes JSON and markdown with the machine."""
import json

import pytest

from forge.bench import harness
from forge.bench.__main__ import main


def test_summarise_median_min_max():
    s = harness.summarise([{"a": 1.0}, {"a": 3.0}, {"a": 2.0, "b": 5.0}])
    assert s["a"]["median"] == 2.0 and s["a"]["min"] == 1.0 and s["a"]["max"] == 3.0
    assert s["b"]["values"] == [5.0]


def test_registry_bench_writes_results(tmp_path, capsys):
    assert main(["registry", "--quick", "--repeats", "2", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "registry.json").read_text())
    assert data["repeats"] == 2 and data["machine"]["cpus"] >= 1
    assert data["metrics"]["direct_writes_per_s"]["min"] > 0
    assert "| direct_writes_per_s | rows/s |" in (tmp_path / "registry.md").read_text()
    assert "direct_writes_per_s" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["nope"], ["harness"], ["registry", "--repeats", "0"]])
def test_bad_benchmark_arguments_exit_2(argv, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("forge.bench:")


def test_every_benchmark_module_is_listed_and_every_listed_one_exists():
    import importlib.util

    from tests.conftest import ROOT

    files = {f"{folder.replace('/', '.')}.{p.stem}" for folder in ("forge/bench", "actors/bench")
             for p in (ROOT / folder).glob("*.py")
             if p.stem != "__init__" and "def measure(" in p.read_text()}
    assert files == set(harness.BENCHMARKS.values())
    assert all(importlib.util.find_spec(m) for m in harness.BENCHMARKS.values())
    assert all(m.rsplit(".", 1)[1] == name for name, m in harness.BENCHMARKS.items())
