"""Faults and bad input around the registry and the runs directory (issue 16): each exits 2 with
one line, writes nothing, loses nothing. No Ray: `forge.submit` must refuse before starting it."""
import os
import shutil
import subprocess
import time
from contextlib import contextmanager

import pytest

import tests.fixture_phases  # noqa: F401  (registers the fixture phases)

from forge import cli, submit
from forge.registry import RegistryStore
from tests.conftest import ROOT

FIXTURE = str(ROOT / "tests" / "fixture.yaml")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def make_runs(runs_dir, statuses=("done", "done")) -> list[str]:
    """Runs, oldest first, each with one model; every model after the first has the previous
    one as its `input` parent."""
    store = RegistryStore(runs_dir / "registry.db")
    ids = []
    for i, status in enumerate(statuses):
        run_id = f"2026010{i}-000000-aaaaa{i}"
        store.create_run(run_id, "t", "pipeline: {phases: [a, b]}\n")
        store.set_run_status(run_id, status)
        parents = [(f"{ids[-1]}/a/m", "input")] if ids else []
        store.register_model(f"{run_id}/a/m", run_id, "a", "m", f"{run_id}/a/m", "0" * 64, 1, 1,
                             {}, parents)
        (runs_dir / run_id).mkdir()
        ids.append(run_id)
        time.sleep(0.01)  # distinct creation times: gc keeps the newest
    store.close()
    return ids


def gc_config(tmp_path, keep_runs: int) -> str:
    path = tmp_path / "gc.yaml"
    path.write_text(f"registry: {{keep_runs: {keep_runs}}}\n")
    return str(path)


@pytest.mark.parametrize("argv", [["gc", "--dry-run"], ["gc"], ["rollback", "r", "--to", "a"],
                                  ["status"], ["models"]])
def test_a_mistyped_runs_dir_is_not_created(tmp_path, capsys, argv):
    typo = tmp_path / "typo"
    assert cli.main([*argv, "--runs-dir", str(typo)]) == 2
    assert one_error_line(capsys) == f"error: no registry at {typo / 'registry.db'} (is --runs-dir right?)"
    assert not typo.exists()


def test_gc_keeps_the_lineage_of_kept_models(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    old, new = make_runs(runs)
    assert cli.main(["gc", "--config", gc_config(tmp_path, 1), "--runs-dir", str(runs)]) == 0
    store = RegistryStore(runs / "registry.db", readonly=True)
    assert [r["id"] for r in store.list_runs()] == [new] and not (runs / old).exists()
    assert store.parents(f"{new}/a/m") == [{"parent": f"{old}/a/m", "method": "input"}]
    assert cli.main(["show", f"{new}/a/m", "--runs-dir", str(runs)]) == 0
    assert f"{old}/a/m (input, not in the registry (removed))" in capsys.readouterr().out


def test_keep_runs_never_counts_a_running_run(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    finished, going = make_runs(runs, ("done", "running"))
    assert cli.main(["gc", "--config", gc_config(tmp_path, 1), "--runs-dir", str(runs)]) == 0
    ids = {r["id"] for r in RegistryStore(runs / "registry.db", readonly=True).list_runs()}
    assert ids == {finished, going} and (runs / finished).is_dir()


def damage_pages(db) -> bytes:
    """Overwrite every page after the first (the header and schema stay intact)."""
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\xa5" * (len(data) - page)
    db.write_bytes(bytes(data))
    return bytes(data)


@pytest.mark.parametrize("argv", [["status"], ["status", "{run}"], ["models"], ["show", "{run}/a/m"],
                                  ["gc", "--dry-run"], ["gc"], ["rollback", "{run}", "--to", "a"]])
def test_a_registry_with_damaged_pages_is_one_line(tmp_path, capsys, argv):
    runs = tmp_path / "runs"
    runs.mkdir()
    (run_id, _) = make_runs(runs)
    damaged = damage_pages(runs / "registry.db")
    assert cli.main([a.format(run=run_id) for a in argv] + ["--runs-dir", str(runs)]) == 2
    err = one_error_line(capsys)
    assert "is damaged" in err and "PRAGMA integrity_check" in err
    assert (runs / "registry.db").read_bytes() == damaged and (runs / run_id).is_dir()  # untouched


@contextmanager
def read_only(path):
    """`path` read-only for this process: a read-only remount when root (root ignores file
    modes), else a chmod."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield
        path.chmod(0o755)
        return
    staged = path.with_name(path.name + ".contents")
    shutil.copytree(path, staged)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)]).returncode:
        pytest.skip("cannot mount a read-only file system here")
    try:
        shutil.copytree(staged, path, dirs_exist_ok=True)
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def test_a_read_only_runs_dir_is_refused_before_ray(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(submit, "run_on_ray", lambda *a, **k: pytest.fail("Ray was started"))
    runs = tmp_path / "runs"
    runs.mkdir()
    (run_id, _) = make_runs(runs)
    before = sorted(p.name for p in runs.rglob("*"))
    with read_only(runs):
        assert submit.main(["--config", FIXTURE, "--runs-dir", str(runs)]) == 2
        assert one_error_line(capsys) == f"error: run.runs_dir {runs}: not writable ({runs} is read-only)"
        assert cli.main(["gc", "--runs-dir", str(runs)]) == 2
        assert one_error_line(capsys) == f"error: registry {runs / 'registry.db'} is read-only; this command changes it"
        assert cli.main(["rollback", run_id, "--to", "a", "--runs-dir", str(runs)]) == 2
        assert "is read-only" in one_error_line(capsys)
        assert cli.main(["status", "--runs-dir", str(runs)]) == 0  # reading still works
        assert sorted(p.name for p in runs.rglob("*")) == before


def test_models_of_an_unknown_run_is_an_error(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    make_runs(runs)
    assert cli.main(["models", "--run", "nosuch", "--runs-dir", str(runs)]) == 2
    assert one_error_line(capsys).startswith("error: no run 'nosuch'")


def test_monitor_and_status_of_a_run_whose_driver_died(tmp_path, capsys):
    import json

    import psutil

    runs = tmp_path / "runs"
    runs.mkdir()
    (_, run_id) = make_runs(runs, ("done", "running"))
    dead = subprocess.Popen(["sleep", "0"])
    started = psutil.Process(dead.pid).create_time()
    dead.wait()
    session = {"dashboard_url": None, "driver": {"host": os.uname().nodename, "pid": dead.pid,
                                                 "started": started}}
    (runs / run_id / "session.json").write_text(json.dumps(session))
    t0 = time.monotonic()
    assert cli.main(["monitor", run_id, "--runs-dir", str(runs), "--interval", "0.1"]) == 1
    assert time.monotonic() - t0 < 30  # it stops instead of watching forever
    err = capsys.readouterr().err.strip()
    assert err == (f"error: run {run_id} says running but its driver (pid {dead.pid}) is not "
                   f"running; it was interrupted. Continue with: forge resume {run_id} "
                   f"--runs-dir {runs}")
    assert cli.main(["status", run_id, "--runs-dir", str(runs)]) == 0
    assert f"continue with: forge resume {run_id}" in " ".join(capsys.readouterr().out.split())
    # a live driver (this process) keeps the monitor watching
    session["driver"] = {"host": os.uname().nodename, "pid": os.getpid(),
                         "started": psutil.Process().create_time()}
    (runs / run_id / "session.json").write_text(json.dumps(session))
    assert cli.main(["monitor", run_id, "--runs-dir", str(runs), "--interval", "0.01",
                     "--iterations", "3"]) == 0
