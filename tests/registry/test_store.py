"""Registry store: schema, WAL settings, upserts, lineage, read-only access, clean-up."""
import sqlite3
import time

import pytest

from forge.registry import RegistryError, RegistryStore, collect_garbage
from forge.registry.gc import runs_to_drop
from forge.registry.schema import SCHEMA_VERSION


@pytest.fixture
def store(tmp_path):
    s = RegistryStore(tmp_path / "registry.db")
    s.create_run("r1", "test", "run: {}")
    yield s
    s.close()


def test_pragmas_and_version(store):
    conn = store.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "r.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(RegistryError, match="newer than this code"):
        RegistryStore(path)


def test_corrupt_file_gives_registry_error(tmp_path):
    path = tmp_path / "r.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(RegistryError, match="cannot open registry"):
        RegistryStore(path)


def test_phase_attempts_count_up(store):
    assert store.start_phase("r1", "a") == 1
    store.finish_phase("r1", "a", 1, "failed", error="boom")
    assert store.start_phase("r1", "a") == 2
    assert store.interrupt_running("r1") == 1
    latest = store.latest_phases("r1")["a"]
    assert (latest["attempt"], latest["status"]) == (2, "interrupted")
    store.mark_pending("r1", "a")
    assert store.latest_phases("r1")["a"]["status"] == "pending"
    with pytest.raises(ValueError):
        store.finish_phase("r1", "a", 3, "great")


def test_metrics_upsert_never_duplicates(store):
    for _ in range(3):
        store.log_metrics("r1", "a", 5, {"loss": 1.5, "lr": 0.1}, model="m")
    rows = store.metrics("r1")
    assert len(rows) == 2 and {r["name"] for r in rows} == {"loss", "lr"}
    store.log_metrics("r1", "a", 5, {"loss": 0.5}, model="m")
    assert store.metrics("r1", name="loss")[0]["value"] == 0.5


def test_models_lineage_and_replace(store):
    store.register_model("seed", "r1", "a", "seed", "p/seed", "d0", 10, 5, {})
    store.register_model("child", "r1", "b", "c", "p/c", "d1", 10, 5, {"k": 1}, [("seed", "train")])
    tree = store.lineage_tree("child")
    assert tree["parents"][0]["id"] == "seed" and tree["parents"][0]["method"] == "train"
    store.register_model("child", "r1", "b", "c", "p/c", "d2", 10, 5, {}, [("seed", "merge")])
    assert store.get_model("child")["sha256"] == "d2"
    assert store.parents("child") == [{"parent": "seed", "method": "merge"}]
    assert len(store.list_models("r1")) == 2 and len(store.list_models(phase="b")) == 1


def test_unknown_rows_raise(store):
    with pytest.raises(RegistryError):
        store.get_run("nope")
    with pytest.raises(RegistryError):
        store.get_model("nope")
    with pytest.raises(RegistryError):
        store.set_run_status("nope", "done")


def test_readonly_reader_sees_writes_and_cannot_write(store, tmp_path):
    store.log_metrics("r1", "a", 1, {"x": 1.0})
    reader = RegistryStore(tmp_path / "registry.db", readonly=True)
    assert len(reader.metrics("r1")) == 1
    with pytest.raises(sqlite3.OperationalError):
        reader.create_run("r2", "x", "")
    with pytest.raises(RegistryError, match="no registry"):
        RegistryStore(tmp_path / "missing.db", readonly=True)


def test_gc_policy():
    now = time.time()
    runs = [{"id": f"r{i}", "status": s, "created": now - age * 86400}
            for i, (s, age) in enumerate([("running", 0), ("done", 1), ("failed", 1),
                                          ("failed", 30), ("done", 40), ("done", 50)])]
    # the running run is neither dropped nor counted: five finished runs fit keep_runs=5
    assert runs_to_drop(runs, keep_runs=5, drop_failed_after_days=7, now=now) == ["r3"]
    assert runs_to_drop(runs, keep_runs=4, drop_failed_after_days=7, now=now) == ["r3", "r5"]


def test_gc_removes_rows_and_dirs(store, tmp_path):
    for i in range(3):
        store.create_run(f"old{i}", "x", "")
        store.set_run_status(f"old{i}", "done")
        (tmp_path / f"old{i}").mkdir()
        time.sleep(0.01)
    store.set_run_status("r1", "done")
    dropped = collect_garbage(store, tmp_path, keep_runs=2, drop_failed_after_days=7)
    assert sorted(dropped) == ["old0", "r1"]
    assert {r["id"] for r in store.list_runs()} == {"old1", "old2"}
    assert not (tmp_path / "old0").exists() and (tmp_path / "old2").exists()


def test_nan_metric_is_stored_as_null_not_an_error(store):
    store.log_metrics("r1", "a", 1, {"nan": float("nan"), "inf": float("inf")})
    values = {r["name"]: r["value"] for r in store.metrics("r1")}
    assert values["nan"] is None and values["inf"] == float("inf")


def test_readonly_open_of_a_database_being_created(tmp_path):
    sqlite3.connect(tmp_path / "new.db").close()  # the file exists, the schema does not yet
    with pytest.raises(RegistryError, match="has no tables yet"):
        RegistryStore(tmp_path / "new.db", readonly=True)
