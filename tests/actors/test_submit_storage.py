"""forge.submit with the runs in a URI run storage (file://): the driver and the Ray workers have
different cache directories (conftest gives the workers theirs), so every model a phase reads
must have come through the storage. The CLI and resume work on the URI too."""
import json
import os
import shutil

import pytest

import tests.fixture_phases  # noqa: F401  (registers the fixture phases)
from forge import cli, submit
from forge.pipeline.artifacts import verify_artifact
from forge.registry import RegistryStore
from forge.storage import CACHE_ENV, RunStorage
from tests.conftest import ROOT

pytestmark = pytest.mark.ray
FIXTURE = str(ROOT / "tests" / "fixture.yaml")


def test_fixture_pipeline_through_a_uri_storage(ray_session, tmp_path, monkeypatch, capsys):
    shared, driver_cache = tmp_path / "shared", tmp_path / "driver-cache"
    worker_cache = os.environ[CACHE_ENV]  # what the session's Ray workers inherited
    monkeypatch.setenv(CACHE_ENV, str(driver_cache))
    uri = shared.as_uri()
    code = submit.main(["--config", FIXTURE, "--runs-dir", uri,
                        "--set", "phases.fixture_train.steps=3"])
    assert code == 0, capsys.readouterr()
    storage = RunStorage(uri)
    assert storage.registry_path.is_relative_to(driver_cache)  # the registry: driver's disk only
    assert not (shared / "registry.db").exists()
    store = RegistryStore(storage.registry_path, readonly=True)
    (run,) = store.list_runs()
    rid = run["id"]
    assert run["status"] == "done"
    models = {m["name"]: m for m in store.list_models(rid)}
    assert set(models) == {"seed", "trained"}
    for m in models.values():  # in the storage, intact, where the registry says
        verify_artifact(shared / m["path"], m["sha256"])
    for name in ("config.yaml", "session.json", "corpus.json"):  # the corpus: gathered once
        assert (shared / rid / name).is_file(), name
    # Committed phases leave no staging; a not-adopted output stays there for inspection.
    assert [p.name for p in shared.glob(f"{rid}/.fixture_*")] == [".fixture_shrink.attempt-1"]
    # The phases ran in Ray workers with their own mirror: fixture_train pulled the seed there.
    workers = RunStorage(uri, cache_dir=worker_cache)
    assert workers.local_root != storage.local_root
    verify_artifact(workers.local(models["seed"]["path"]), models["seed"]["sha256"])

    assert cli.main(["models", "--run", rid, "--runs-dir", uri]) == 0
    assert cli.main(["show", models["trained"]["id"], "--runs-dir", uri]) == 0
    assert cli.main(["report", rid, "--runs-dir", uri]) == 0
    assert "| fixture_init | 1 | done |" in (shared / rid / "report.md").read_text()

    # Resume with an empty driver mirror: every phase is verified from the storage and skipped.
    shutil.rmtree(storage.local(rid))
    assert submit.main(["--resume", rid, "--runs-dir", uri]) == 0
    phases = store.latest_phases(rid)
    assert {p: r["attempt"] for p, r in phases.items()} == {
        "fixture_init": 1, "fixture_train": 1, "fixture_shrink": 1}
    assert "artifacts verified" in capsys.readouterr().out
    summary = json.loads(phases["fixture_train"]["summary"])
    assert summary["outputs"][0]["path"] == models["trained"]["path"]

    # A new head (another cache, no registry): the CLI restores the storage's registry snapshot.
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "new-head"))
    capsys.readouterr()
    assert cli.main(["status", rid, "--runs-dir", uri]) == 0
    assert "fixture_shrink" in capsys.readouterr().out
    restored = RegistryStore(RunStorage(uri).registry_path, readonly=True)
    assert restored.get_run(rid)["status"] == "done"
    assert {m["name"] for m in restored.list_models(rid)} == {"seed", "trained"}


@pytest.mark.parametrize("uri, says", [
    ("nope://bucket/runs", "run.runs_dir nope://bucket/runs"),
    ("file:///proc/forge-cannot-write-here", "file:///proc/forge-cannot-write-here"),
])
def test_unusable_runs_uri_is_bad_input(uri, says, capsys):
    assert submit.main(["--config", FIXTURE, "--runs-dir", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and says in err and "\n" not in err


def test_fixture_pipeline_through_s3(ray_session, tmp_path, monkeypatch, capsys):
    """The same run against a real S3 API (moto's server on loopback). The session's Ray workers
    have no AWS environment, so the credentials travel in the URI (`key:secret@bucket`)."""
    pytest.importorskip("moto.server", reason="needs moto[server]")
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"{host}:{port}"
        admin = pafs.S3FileSystem(endpoint_override=endpoint, scheme="http", region="us-east-1",
                                  access_key="forge", secret_key="forge", allow_bucket_creation=True)
        admin.create_dir("forge-runs")
        uri = f"s3://forge:forge@forge-runs/team?endpoint_override={endpoint}&scheme=http&region=us-east-1"
        monkeypatch.setenv(CACHE_ENV, str(tmp_path / "driver-cache"))
        code = submit.main(["--config", FIXTURE, "--runs-dir", uri, "--phases",
                            "fixture_init..fixture_train", "--set", "phases.fixture_train.steps=2"])
        assert code == 0, capsys.readouterr()
        store = RegistryStore(RunStorage(uri).registry_path, readonly=True)
        (run,) = store.list_runs()
        models = {m["name"]: m for m in store.list_models(run["id"])}
        assert set(models) == {"seed", "trained"}
        for m in models.values():  # the objects in the bucket, read back through a fresh mirror
            fresh = RunStorage(uri, cache_dir=tmp_path / "elsewhere")
            verify_artifact(fresh.pull(m["path"]), m["sha256"])
        listing = admin.get_file_info(pafs.FileSelector(f"forge-runs/team/{run['id']}"))
        assert {i.base_name for i in listing} >= {"config.yaml", "fixture_init", "fixture_train"}
    finally:
        server.stop()
