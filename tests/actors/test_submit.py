"""forge.submit end to end with the fixture phases, in this process, on the session Ray."""
import json

import pytest
import yaml

import tests.fixture_phases  # noqa: F401  (registers the fixture phases, also for -k runs)
from forge import cli, submit
from forge.registry import RegistryStore
from tests.conftest import ROOT

pytestmark = pytest.mark.ray
FIXTURE = str(ROOT / "tests" / "fixture.yaml")


def run_ids(runs_dir):
    return [p.name for p in runs_dir.iterdir() if p.is_dir()] if runs_dir.exists() else []


def test_fixture_pipeline_records_everything(ray_session, runs_dir, capsys):
    code = submit.main(["--config", FIXTURE, "--runs-dir", str(runs_dir),
                        "--set", "phases.fixture_train.steps=12"])
    out = capsys.readouterr().out
    assert code == 0, out
    (run_id,) = run_ids(runs_dir)
    assert f"run id: {run_id}" in out and "run summary" in out
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    assert store.get_run(run_id)["status"] == "done"
    phases = store.latest_phases(run_id)
    assert [phases[p]["status"] for p in ("fixture_init", "fixture_train", "fixture_shrink")] == \
        ["done", "done", "not_adopted"]
    assert len(store.metrics(run_id, phase="fixture_train", name="loss")) == 12
    losses = [m["value"] for m in store.metrics(run_id, phase="fixture_train", name="loss")]
    assert losses[-1] < losses[0]  # the fixture really trains
    models = {m["name"]: m for m in store.list_models(run_id)}
    assert set(models) == {"seed", "trained"}  # the shrunk model was not adopted
    assert store.parents(models["trained"]["id"]) == [
        {"parent": models["seed"]["id"], "method": "train"}]
    assert [h["to_phase"] for h in store.handoffs(run_id)] == ["fixture_init", "fixture_train"]
    summary = json.loads(phases["fixture_shrink"]["summary"])
    assert summary["outputs"][0]["id"] == models["trained"]["id"]  # input handed on unchanged
    saved = yaml.safe_load((runs_dir / run_id / "config.yaml").read_text())
    assert saved["phases"]["fixture_train"]["steps"] == 12

    assert cli.main(["status", "--runs-dir", str(runs_dir)]) == 0
    assert cli.main(["status", run_id, "--runs-dir", str(runs_dir)]) == 0
    assert cli.main(["models", "--run", run_id, "--runs-dir", str(runs_dir)]) == 0
    assert cli.main(["show", models["trained"]["id"], "--runs-dir", str(runs_dir)]) == 0
    assert cli.main(["report", run_id, "--runs-dir", str(runs_dir)]) == 0
    assert cli.main(["monitor", run_id, "--runs-dir", str(runs_dir), "--iterations", "1"]) == 0
    out = capsys.readouterr().out
    assert "not_adopted" in out and "fixture_train" in out and "lineage of" in out
    report = (runs_dir / run_id / "report.md").read_text()
    assert "| fixture_shrink | 1 | not_adopted | no |" in report

    # rollback marks later phases pending; resume re-runs them and keeps the rows unique
    assert cli.main(["rollback", run_id, "--to", "fixture_init", "--runs-dir", str(runs_dir)]) == 0
    assert store.latest_phases(run_id)["fixture_train"]["status"] == "pending"
    assert submit.main(["--resume", run_id, "--runs-dir", str(runs_dir)]) == 0
    phases = store.latest_phases(run_id)
    assert phases["fixture_init"]["attempt"] == 1 and phases["fixture_train"]["attempt"] == 3
    assert len(store.metrics(run_id, phase="fixture_train", name="loss")) == 12
    assert len(store.list_models(run_id)) == 2


def test_failing_phase_exits_1_and_names_resume(ray_session, runs_dir, capsys):
    code = submit.main(["--config", FIXTURE, "--runs-dir", str(runs_dir),
                        "--set", "phases.fixture_train.fail_at_step=3", "--phases", "..fixture_train"])
    err = capsys.readouterr().err
    assert code == 1
    (run_id,) = run_ids(runs_dir)
    assert "phase fixture_train failed" in err and "planned failure at step 3" in err
    assert f"forge resume {run_id}" in err
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    assert store.get_run(run_id)["status"] == "failed"
    row = store.latest_phases(run_id)["fixture_train"]
    assert row["status"] == "failed" and "planned failure" in row["error"]
    assert not list((runs_dir / run_id).glob(".fixture_train.attempt-*"))  # staging cleaned up


def test_gate_fail_mode_stops_the_run(ray_session, runs_dir, capsys):
    code = submit.main(["--config", FIXTURE, "--runs-dir", str(runs_dir),
                        "--set", "phases.fixture_shrink.gate.on_fail=fail"])
    assert code == 1
    err = capsys.readouterr().err
    assert "phase fixture_shrink failed: gate failed: loss " in err and "resume with:" in err
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    (run,) = store.list_runs()
    row = store.latest_phases(run["id"])["fixture_shrink"]
    assert row["status"] == "failed" and row["error"].startswith("gate failed: loss ")
    assert not (runs_dir / run["id"] / "fixture_shrink").exists()  # nothing committed


BAD = [
    (["--set", "run.seed=-1"], "run.seed"),
    (["--set", "run.seed=abc"], "run.seed"),
    (["--set", "run.unknown=1"], "run.unknown"),
    (["--set", "phases.fixture_train.steps=0"], "phases.fixture_train.steps"),
    (["--set", "phases.fixture_train.lr=-0.1"], "phases.fixture_train.lr"),
    (["--set", "phases.fixture_train.resources.num_cpus=-1"], "phases.fixture_train.resources.num_cpus"),
    (["--set", "phases.fixture_shrink.gate.on_fail=maybe"], "phases.fixture_shrink.gate.on_fail"),
    (["--set", "phases.nope.steps=1"], "phases.nope"),
    (["--set", "pipeline.phases=[fixture_init, missing]"], "pipeline.phases[1]"),
    (["--set", "pipeline.phases=[fixture_init, fixture_init]"], "pipeline.phases"),
    (["--set", "wandb.mode=loud"], "wandb.mode"),
    (["--set", "ray.object_store_mb=1"], "ray.object_store_mb"),
    (["--set", "phases.fixture_train.lr=.inf"], "phases.fixture_train.lr"),
    (["--set", "phases.fixture_shrink.gate.margin=.nan"], "phases.fixture_shrink.gate.margin"),
    (["--set", "noequals"], "--set"),
    (["--phases", "fixture_init..nope"], "--phases"),
    (["--config", "/does/not/exist.yaml"], "config"),
    (["--set", "data.text_files=[/does/not/exist.txt]"], "data.text_files[0]"),
]


@pytest.mark.parametrize("extra, key", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_input_exit_2_one_line_no_run_dir(extra, key, runs_dir, capsys):
    args = ["--runs-dir", str(runs_dir)] + (["--config", FIXTURE] if "--config" not in extra else [])
    assert submit.main(args + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {key}") and "\n" not in err
    assert not runs_dir.exists()


def test_impossible_resources_exit_2_before_work(ray_session, runs_dir, capsys):
    code = submit.main(["--config", FIXTURE, "--runs-dir", str(runs_dir),
                        "--set", "phases.fixture_train.resources.num_cpus=64"])
    assert code == 2
    assert "phases.fixture_train.resources.num_cpus: got 64.0" in capsys.readouterr().err
    assert not runs_dir.exists()
    code = submit.main(["--config", FIXTURE, "--runs-dir", str(runs_dir),
                        "--set", "phases.fixture_train.resources.num_gpus=4"])
    assert code == 2 and not runs_dir.exists()


def test_resume_unknown_run_is_bad_input(runs_dir, capsys):
    assert submit.main(["--resume", "nope", "--runs-dir", str(runs_dir)]) == 2
    assert "no run at" in capsys.readouterr().err


def test_empty_plan_is_bad_input_naming_available_phases(runs_dir, tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    for args in (["--set", "pipeline.phases=[]"], ["--config", str(empty)]):
        assert submit.main(["--runs-dir", str(runs_dir), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: pipeline.phases: empty, nothing to run; phases available")
        assert "fixture_train" in err and "\n" not in err  # registered phases are listed
    assert submit.main(["--runs-dir", str(runs_dir), "--config", FIXTURE, "--phases", ","]) == 2
    assert capsys.readouterr().err.startswith("error: --phases: got ','; allowed: phase names")
    assert not runs_dir.exists()


def test_binary_config_is_bad_input(runs_dir, tmp_path, capsys):
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    assert submit.main(["--runs-dir", str(runs_dir), "--config", str(binary)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: config: {binary} is not a text file (byte 128 is not UTF-8)"
    assert not runs_dir.exists()



def test_a_run_starts_from_a_registered_model(ray_session, runs_dir, capsys):
    assert submit.main(["--config", FIXTURE, "--runs-dir", str(runs_dir), "--phases",
                        "fixture_init", "--set", "phases.fixture_train.steps=2"]) == 0
    (first,) = run_ids(runs_dir)
    seed_id = f"{first}/fixture_init/seed"
    code = submit.main(["--config", FIXTURE, "--runs-dir", str(runs_dir), "--phases",
                        "fixture_train", "--input", seed_id, "--set", "phases.fixture_train.steps=3"])
    assert code == 0, capsys.readouterr()
    (second,) = set(run_ids(runs_dir)) - {first}
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    models = {m["name"]: m for m in store.list_models(second)}
    assert set(models) == {"0-seed", "trained"}
    assert store.parents(models["0-seed"]["id"]) == [{"parent": seed_id, "method": "input"}]
    assert store.parents(models["trained"]["id"]) == [{"parent": models["0-seed"]["id"],
                                                       "method": "train"}]
    assert (runs_dir / second / "inputs" / "0-seed" / "model.safetensors").is_file()


def test_a_bad_input_stops_before_anything_starts(runs_dir, capsys):
    code = submit.main(["--config", FIXTURE, "--runs-dir", str(runs_dir), "--input", "nope/x/y"])
    assert code == 2
    assert "pipeline.inputs[0]: 'nope/x/y' is neither" in capsys.readouterr().err
    assert run_ids(runs_dir) == []


def test_resume_of_a_path_or_unregistered_dir_exits_2_before_ray(runs_dir, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.setattr(submit, "run_on_ray", lambda *a, **k: pytest.fail("Ray was started"))
    outside = tmp_path / "x"
    outside.mkdir()
    (outside / "config.yaml").write_text((ROOT / "tests" / "fixture.yaml").read_text())
    stray = runs_dir / "20260101-000000-abcdef"  # a run directory the registry does not know
    stray.mkdir(parents=True)
    (stray / "config.yaml").write_text("run: {name: stray}\n")
    before = sorted(p.name for p in runs_dir.rglob("*"))
    for run_id, message in (("../x", "--resume ../x: not a run id"),
                            ("/etc", "--resume /etc: not a run id"),
                            (stray.name, f"--resume {stray.name}: cannot open registry")):
        assert cli.main(["resume", run_id, "--runs-dir", str(runs_dir)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {message}") and "\n" not in err
    RegistryStore(runs_dir / "registry.db").close()  # a registry without that run's row
    assert cli.main(["resume", stray.name, "--runs-dir", str(runs_dir)]) == 2
    assert "has no row for it" in capsys.readouterr().err
    assert sorted(p.name for p in runs_dir.rglob("*") if "registry.db" not in p.name) == before
