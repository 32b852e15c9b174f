"""The dashboard's numbers, read without a browser from fixture registry rows and artifacts."""
import io
from pathlib import Path
import json
import zipfile

import pytest

from forge.pipeline.progress import read_progress, write_progress
from forge.registry import RegistryError
from forge.storage import RunStorage
from forge.ui import configs, data, system
from tests.ui.fixture_runs import DONE, LIVE, QUIET_REASON, build


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return build(tmp_path_factory.mktemp("ui") / "runs")


@pytest.fixture
def view(fx):
    v = data.RunsView.open(str(fx.storage.local_root))
    yield v
    v.close()


def test_runs_newest_first_with_phases_done(view):
    rows = data.run_rows(view.store)
    assert [(r["run"], r["status"], r["phases done"]) for r in rows] == [
        (LIVE, "running", "0/2"), (DONE, "done", "4/4")]
    assert rows[1]["wall time"].endswith(" s")


def test_phase_grid_has_every_planned_phase_and_live_progress(fx, view):
    done = {r["phase"]: r for r in data.phase_rows(view, DONE)}
    assert list(done) == ["cognate", "evomerge", "quiet_star", "bitnet"]
    assert (done["quiet_star"]["status"], done["quiet_star"]["adopted"]) == ("not_adopted", "no")
    assert done["quiet_star"]["progress text"] == "finished, not adopted"
    assert done["cognate"]["key metric"] == "val_bits_per_byte = 5.654"
    assert done["cognate"]["size"] == "478.54 KiB" and done["bitnet"]["progress"] == 1.0
    live = data.phase_rows(view, LIVE)
    assert [(r["phase"], r["status"]) for r in live] == [("cognate", "running"), ("evomerge", "pending")]
    assert live[0]["progress"] == pytest.approx(3 / 12)
    assert live[0]["progress text"] == "3/12 steps over all trainers"
    assert live[1]["attempt"] == data.NONE


def test_progress_file_round_trip_and_garbage(tmp_path):
    storage = RunStorage(tmp_path)
    assert read_progress(storage, "r") is None
    write_progress(storage, "r", "bitnet", 2, 4, "steps")
    assert read_progress(storage, "r")["done"] == 2
    (tmp_path / "r" / "progress.json").write_text("{not json")
    assert read_progress(storage, "r") is None
    (tmp_path / "r" / "progress.json").write_text('{"phase": "x"}')
    assert read_progress(storage, "r") is None


def test_curves_are_the_metrics_logged_at_several_steps(view):
    curves = data.metric_curves(view.store, DONE, "cognate")
    assert set(curves) == {"loss", "lr"}
    assert set(curves["loss"]) == set(["reasoning", "memory", "adaptive"])
    assert curves["loss"]["memory"][10] == pytest.approx(6.5 - 1.0 - 0.05)
    evo = data.metric_curves(view.store, DONE, "evomerge")
    assert evo["evolve/best"]["(phase)"] == pytest.approx({0: -15.0, 1: -14.6, 2: -14.2})
    last = {(r["model"], r["metric"]): r["value"] for r in data.final_metrics(view.store, DONE, "cognate")}
    assert last[("adaptive", "loss")] == "5.4"  # step 10: 6.5 - 1.0 - 0.1


def test_gate_decision_carries_reason_and_numbers(view):
    latest = view.store.latest_phases(DONE)
    quiet = data.gate_decision(latest["quiet_star"])
    assert quiet["verdict"].startswith("not adopted") and quiet["reason"] == QUIET_REASON
    bitnet = data.gate_decision(latest["bitnet"])
    assert bitnet["headline"] == {"gate.fp_bits_per_byte": 5.6787, "gate.margin": 0.1}
    assert data.gate_decision(None)["verdict"] == "pending"
    assert data.flat_numbers({"a": {"b": 1, "c": True, "d": "x"}, "e": 2.5}) == {"a.b": 1.0, "e": 2.5}


def test_plots_and_wandb_locations(fx, view):
    assert [p.name for p in data.phase_plots(view.storage, DONE, "evomerge")] == ["fitness.png"]
    assert data.phase_plots(view.storage, DONE, "quiet_star") == []
    found = data.wandb_runs(view.storage, DONE, "evomerge")
    assert len(found) == 1 and found[0].endswith("wandb/offline-run-20260101_000001-abc123")
    assert data.wandb_runs(view.storage, DONE, "evo") == []  # a prefix of a name is not the name
    assert data.wandb_runs(view.storage, DONE, "cognate") == []


def test_model_filters(view):
    models = view.store.list_models()
    assert len(models) == 5
    assert [m["name"] for m in data.filter_models(models, phase="cognate", text="MEM")] == ["memory"]
    assert data.filter_models(models, run=LIVE) == []
    assert len(data.filter_models(models, max_bytes=min(m["bytes"] for m in models))) >= 1
    assert data.filter_models(models, max_bytes=0) == []


def test_lineage_has_every_parent_edge_of_a_merge(view):
    edges = data.lineage_edges(view.store, f"{DONE}/bitnet/ternary")
    assert edges == [(f"{DONE}/evomerge/champion", f"{DONE}/bitnet/ternary", "bitnet"),
                     (f"{DONE}/cognate/memory", f"{DONE}/evomerge/champion", "evomerge:ties"),
                     (f"{DONE}/cognate/reasoning", f"{DONE}/evomerge/champion", "evomerge:ties")]
    dot = data.lineage_dot(edges, f"{DONE}/bitnet/ternary")
    assert dot.count("->") == 3 and f'"{DONE}/cognate/memory" -> "{DONE}/evomerge/champion"' in dot


def test_manifest_zip_and_commands(view):
    model = view.store.get_model(f"{DONE}/evomerge/champion")
    assert len(data.manifest_of(view.storage, model)["parents"]) == 2
    archive = zipfile.ZipFile(io.BytesIO(data.artifact_zip(view.storage, model)))
    assert sorted(archive.namelist()) == ["champion/config.json", "champion/manifest.json",
                                          "champion/model.safetensors"]
    manifest = json.loads(archive.read("champion/manifest.json"))
    assert manifest["digest"] == model["sha256"]
    cmds = data.model_commands(view.storage, model)
    assert cmds["eval"] == f"forge eval {view.storage.local(model['path'])}"
    assert cmds["serve"].startswith("forge serve ")
    with pytest.raises(FileNotFoundError, match="artifact of x"):
        data.artifact_zip(view.storage, {"id": "x", "path": "nowhere/x"})


def test_no_registry_is_a_registry_error(tmp_path):
    with pytest.raises(RegistryError, match="no runs in .* yet"):
        data.RunsView.open(str(tmp_path))


def test_config_validation_names_the_key_path():
    text = configs.config_sources()["config/pipeline.yaml"].read_text()
    cfg, error = configs.validate_yaml(text)
    assert error == "" and cfg.pipeline.phases
    assert configs.validate_yaml(text + "\nrun: {nmae: x}\n")[1].startswith("run.nmae: unknown key")
    assert configs.validate_yaml("phases: {cognate: {train: {steps: -1}}}")[1].startswith(
        "phases.cognate.train.steps")
    assert configs.validate_yaml("run: {name: x}\npipeline: [unclosed")[1].startswith(
        "config: not valid YAML at line 2")
    assert any(label.startswith("config/presets/") for label in configs.config_sources())


def test_submit_commands_are_exact_and_masked(tmp_path):
    direct, job = configs.submit_commands(str(tmp_path))
    assert direct == f"python -m forge.submit --config pipeline-edited.yaml --runs-dir {tmp_path}"
    assert job.startswith("ray job submit --address http://127.0.0.1:8265 --working-dir . -- ")
    direct, job = configs.submit_commands("s3://key:secret@bucket/runs", "http://h:8265")
    assert "secret" not in direct + job and "key:***@bucket" in direct and "--address http://h:8265" in job


def test_local_node_reading_and_rows():
    node = system.local_node()
    assert node["cpus"] >= 1 and 0 < node["mem_used"] < node["mem_total"]
    assert 0 < node["disk_used"] < node["disk_total"] and node["gpus"] == []
    row = system.node_rows([node])[0]
    assert row["memory"].endswith("%)") and row["GPU"] == "none"
    gpu = {**node, "gpus": [{"name": "RTX", "util_percent": 50.0, "mem_used": 2 * 1024**3,
                             "mem_total": 6 * 1024**3}]}
    assert system.node_rows([gpu])[0]["GPU"] == "RTX: 2.0 GiB / 6.0 GiB (33%), 50% busy"
    assert system.node_rows([{"node": "n", "ip": "i", "state": "DEAD"}])[0]["CPU"] == "—"


def test_a_uri_runs_location_reads_through_the_storage(fx, tmp_path, monkeypatch):
    """`--runs-dir file://...` (any URI): the registry comes from the storage's snapshot, plots,
    W&B files and artifacts are pulled into this machine's cache, secrets never shown."""
    from forge.registry.snapshot import snapshot_registry

    monkeypatch.setenv("FORGE_CACHE_DIR", str(tmp_path / "cache"))
    uri = fx.storage.local_root.as_uri()
    snapshot_registry(fx.store, RunStorage(uri, cache_dir=tmp_path / "head"))
    view = data.RunsView.open(uri)
    try:
        assert view.storage.remote and view.storage.local_root != fx.storage.local_root
        assert [r["status"] for r in data.phase_rows(view, DONE)] == ["done", "done", "not_adopted", "done"]
        (plot,) = data.phase_plots(view.storage, DONE, "evomerge")
        assert plot.is_file() and str(plot).startswith(str(tmp_path / "cache"))
        (wandb,) = data.wandb_runs(view.storage, DONE, "evomerge")
        assert wandb.startswith(str(tmp_path / "cache")) and (Path(wandb) / "run-abc123.wandb").is_file()
        model = view.store.get_model(f"{DONE}/bitnet/ternary")
        assert len(zipfile.ZipFile(io.BytesIO(data.artifact_zip(view.storage, model))).namelist()) == 3
    finally:
        view.close()
    assert masked_display("s3://k:s3cret@b/r") == "s3://k:***@b/r"


def masked_display(uri: str) -> str:
    return data.RunsView(uri, RunStorage(uri), None).display
