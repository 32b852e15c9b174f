"""RegistryActor: one named detached writer per database; concurrent writers lose nothing."""
import pytest
import ray

from actors.registry import RegistryClient, get_registry, registry_name
from forge.registry import RegistryStore

pytestmark = pytest.mark.ray


@ray.remote(num_cpus=0)
def write_metrics(handle, worker: int, n: int) -> int:
    for step in range(n):
        ray.get(handle.call.remote("log_metrics", "r", "p", step, {f"w{worker}": float(step)}))
    return n


def test_eight_writers_two_hundred_rows_each(ray_session, tmp_path):
    db = tmp_path / "registry.db"
    handle = get_registry(db, "test")
    client = RegistryClient(handle)
    client.create_run("r", "concurrency", "")
    written = ray.get([write_metrics.remote(handle, w, 200) for w in range(8)], timeout=120)
    assert sum(written) == 1600
    reader = RegistryStore(db, readonly=True)
    rows = reader.metrics("r")
    assert len(rows) == 1600
    assert {(r["name"], r["step"]) for r in rows} == {(f"w{w}", s) for w in range(8) for s in range(200)}
    ray.kill(handle)


def test_same_database_same_actor(ray_session, tmp_path):
    a = get_registry(tmp_path / "registry.db", "test")
    b = get_registry(tmp_path / "registry.db", "test")
    assert ray.get(a.ping.remote()) == ray.get(b.ping.remote())
    assert a._actor_id == b._actor_id
    assert registry_name(tmp_path / "x.db") != registry_name(tmp_path / "y.db")
    with pytest.raises(AttributeError):
        RegistryClient(a).no_such_method()
    ray.kill(a)
