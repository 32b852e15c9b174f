"""The phases are pure: `forge.phases` names every built-in phase, and the whole default pipeline
runs through the phase classes with their local executors while Ray cannot be imported."""
import json
import subprocess
import sys

from forge.phases import BUILT_IN
from forge.pipeline import get_phase
from tests.conftest import ROOT


def test_every_built_in_phase_is_found_by_name():
    assert BUILT_IN == ("cognate", "evomerge", "quiet_star", "bitnet")  # pipeline order
    assert [get_phase(n).name for n in BUILT_IN] == list(BUILT_IN)


def test_the_pipeline_runs_without_ray(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "phases" / "run_without_ray.py"),
         str(ROOT / "tests" / "pipeline_tiny.yaml"), str(tmp_path),
         "phases.evomerge.evolve.generations=1"],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {r["phase"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert list(rows) == list(BUILT_IN) and not any(r["ray"] for r in rows.values())
    cognate, evomerge = rows["cognate"], rows["evomerge"]
    assert cognate["outputs"] == [f"local/cognate/{n}" for n in ("reasoning", "memory", "adaptive")]
    assert cognate["summary"]["trainer_nodes"] == {n: "local" for n in ("reasoning", "memory",
                                                                        "adaptive")}
    assert evomerge["outputs"] == ["local/evomerge/champion"]
    assert evomerge["summary"]["generations_scored"] == 2
    assert evomerge["summary"]["timing"]["workers"] == 1.0
    candidates = list((tmp_path / "local" / "checkpoints" / "evomerge" / "candidates").iterdir())
    assert {c.name.split("-")[0] for c in candidates} == {"g000", "g001"}  # both generations saved
    assert all(r["rows"] > 0 for r in rows.values())  # every phase logged metric rows
    assert rows["bitnet"]["key"][0] == "val_bits_per_byte"
