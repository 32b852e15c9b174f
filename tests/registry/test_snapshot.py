"""The registry's snapshot in a URI run storage: consistent, restored only where none exists."""
from forge.registry import RegistryStore
from forge.registry.snapshot import SNAPSHOT, restore_registry, snapshot_registry
from forge.storage import RunStorage


def filled_store(path) -> RegistryStore:
    store = RegistryStore(path)
    store.create_run("r1", "demo", "run: {}")
    store.log_metrics("r1", "cognate", 3, {"loss": 2.5})
    return store


def test_snapshot_goes_to_the_storage_and_a_new_head_restores_it(tmp_path):
    uri = (tmp_path / "shared").as_uri()
    head = RunStorage(uri, cache_dir=tmp_path / "head")
    store = filled_store(head.registry_path)
    assert snapshot_registry(store, head)
    assert (tmp_path / "shared" / SNAPSHOT).is_file()
    store.log_metrics("r1", "cognate", 4, {"loss": 2.0})  # after the snapshot: not in it

    new_head = RunStorage(uri, cache_dir=tmp_path / "new-head")
    assert restore_registry(new_head)
    copy = RegistryStore(new_head.registry_path, readonly=True)
    assert [r["id"] for r in copy.list_runs()] == ["r1"]
    assert [(m["step"], m["value"]) for m in copy.metrics("r1")] == [(3, 2.5)]
    copy.close()
    assert not restore_registry(new_head)  # it has its own now: never overwritten
    assert not restore_registry(head)


def test_plain_directories_need_no_snapshot(tmp_path):
    storage = RunStorage(tmp_path / "runs")
    store = filled_store(storage.registry_path)
    assert not snapshot_registry(store, storage)
    assert not (tmp_path / "runs" / SNAPSHOT).exists()
    assert not restore_registry(RunStorage((tmp_path / "empty").as_uri(), cache_dir=tmp_path / "c"))
