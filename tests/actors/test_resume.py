"""Crash safety: SIGKILL the driver mid-phase, resume; corrupt an artifact, resume re-runs it."""
import os
import signal
import subprocess
import sys
import time

import pytest

from forge.registry import RegistryError, RegistryStore
from tests.conftest import ROOT

pytestmark = [pytest.mark.ray, pytest.mark.slow]
SCRIPT = str(ROOT / "tests" / "run_fixture_pipeline.py")
FIXTURE = str(ROOT / "tests" / "fixture.yaml")
STEPS = 200


def launch(address: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.Popen([sys.executable, SCRIPT, "--address", address, *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, timeout: float = 120.0, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(every)


def train_rows(runs_dir) -> int:
    """Metric rows of fixture_train so far; 0 while the registry is still being created."""
    try:
        store = RegistryStore(runs_dir / "registry.db", readonly=True)
        runs = store.list_runs()
    except RegistryError:
        return 0
    return len(store.metrics(runs[0]["id"], phase="fixture_train")) if runs else 0


def test_sigkill_driver_then_resume(ray_session, runs_dir):
    proc = launch(ray_session, "--config", FIXTURE, "--runs-dir", str(runs_dir),
                  "--set", f"phases.fixture_train.steps={STEPS}")
    wait_for(lambda: train_rows(runs_dir) >= 20 or proc.poll() is not None)
    assert proc.poll() is None, proc.stdout.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    (run,) = store.list_runs()
    killed_at = train_rows(runs_dir)
    assert 0 < killed_at < STEPS
    assert store.latest_phases(run["id"])["fixture_train"]["status"] == "running"
    staging = runs_dir / run["id"] / ".fixture_train.attempt-1"  # what the killed attempt wrote
    staging.mkdir(exist_ok=True)
    (staging / "half-written.safetensors").write_bytes(b"\0" * 100)

    resumed = launch(ray_session, "--resume", run["id"], "--runs-dir", str(runs_dir))
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert "[fixture_init] skipped" in out
    assert "[fixture_train] started (attempt 2: re-run, last attempt 1 is interrupted)" in out
    assert not staging.exists()  # the dead attempt's staging directory is gone
    rows = store.latest_phases(run["id"])
    assert rows["fixture_train"]["attempt"] == 2 and rows["fixture_train"]["status"] == "done"
    attempts = [r for r in store.phase_runs(run["id"]) if r["phase"] == "fixture_train"]
    assert [a["status"] for a in attempts] == ["interrupted", "done"]
    steps = sorted(m["step"] for m in store.metrics(run["id"], phase="fixture_train"))
    assert steps == list(range(1, STEPS + 1))  # no step lost, none twice
    assert store.get_run(run["id"])["status"] == "done"
    assert len(store.list_models(run["id"])) == 2


def test_corrupt_artifact_reruns_exactly_that_phase(ray_session, runs_dir):
    first = launch(ray_session, "--config", FIXTURE, "--runs-dir", str(runs_dir))
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    (run,) = store.list_runs()
    trained = store.list_models(run["id"], phase="fixture_train")[0]
    weights = runs_dir / trained["path"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)

    second = launch(ray_session, "--resume", run["id"], "--runs-dir", str(runs_dir))
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out
    assert "[fixture_init] skipped" in out and "[fixture_shrink] skipped" in out
    flat = " ".join(out.split())  # the console may wrap a long line
    assert "[fixture_train] started (attempt 2: re-run, artifact check failed: " in flat
    assert "model.safetensors does not match its sha256)" in flat
    attempts = {p: r["attempt"] for p, r in store.latest_phases(run["id"]).items()}
    assert attempts == {"fixture_init": 1, "fixture_train": 2, "fixture_shrink": 1}
    assert store.get_model(trained["id"])["sha256"] == trained["sha256"]  # same, rebuilt


def test_a_killed_phase_actor_restarts_and_says_so(ray_session, runs_dir):
    """Ray restarts a crashed PhaseActor and re-runs its phase; the registry records the event
    (otherwise the phase's progress would just jump back)."""
    import ray

    proc = launch(ray_session, "--config", FIXTURE, "--runs-dir", str(runs_dir),
                  "--set", "phases.fixture_train.steps=150")
    wait_for(lambda: train_rows(runs_dir) >= 10 or proc.poll() is not None)
    assert proc.poll() is None, proc.stdout.read()
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    (run,) = store.list_runs()
    actor = ray.get_actor(f"fixture_train/{run['id']}", namespace="forge")
    ray.kill(actor, no_restart=False)  # a crash, not a stop: Ray restarts it
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    events = store.metrics(run["id"], phase="fixture_train", name="events/actor_restarts")
    assert [(e["model"], e["step"]) for e in events] == [("phase-actor", 0)]
    assert store.latest_phases(run["id"])["fixture_train"]["status"] == "done"


def test_damaged_run_files_are_rebuilt_identical_or_refused(ray_session, runs_dir, tmp_path, capsys):
    from forge import submit

    text = tmp_path / "notes.txt"
    text.write_text("\n\n".join(f"Document {i}: the quick brown fox jumps {i} times." for i in range(40)))
    args = ["--config", FIXTURE, "--runs-dir", str(runs_dir), "--phases", "fixture_init",
            "--set", f"data.text_files=[{text}]"]
    assert submit.main(args) == 0
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    (run,) = store.list_runs()
    corpus = runs_dir / run["id"] / "corpus.json"
    digest = store.run_files(run["id"])["corpus.json"]
    original = corpus.read_bytes()
    corpus.write_bytes(original[: len(original) // 2])  # truncated, as a full disk leaves it
    capsys.readouterr()
    assert submit.main(["--resume", run["id"], "--runs-dir", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert "corpus.json: damaged (sha256 differs from the registry's); rebuilt from the run's " \
           "config, identical" in " ".join(out.split())
    assert corpus.read_bytes() == original
    # the source text changed since: a rebuild cannot give the original back; say so, keep all
    text.write_text("other words entirely")
    corpus.unlink()
    models = store.list_models(run["id"])
    assert submit.main(["--resume", run["id"], "--runs-dir", str(runs_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"error: {run['id']}/corpus.json: missing; rebuilt from the run's config it "
                   "differs from the original the run's models use: restore it from a copy, or "
                   "start a new run")
    assert not corpus.exists() and store.run_files(run["id"]) == {"corpus.json": digest}
    assert store.list_models(run["id"]) == models


def fill_disk(path):
    """Write zeros to `path` until the disk is full. Unbuffered writes: a buffered file would raise
    ENOSPC again from its final flush on close, after the loop has seen the disk fill."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(fd, b"\0" * 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def test_a_full_disk_is_one_line_and_the_run_resumes(ray_session, tmp_path, capsys):
    import threading

    from forge import submit

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(runs_dir)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    text = tmp_path / "notes.txt"
    text.write_text("\n\n".join(f"Note {i}: a short document for a small corpus." for i in range(20)))
    try:
        result = {}
        args = ["--config", FIXTURE, "--runs-dir", str(runs_dir), "--set", "phases.fixture_train.steps=60",
                "--set", f"data.text_files=[{text}]"]
        thread = threading.Thread(target=lambda: result.setdefault("code", submit.main(args)))
        thread.start()
        wait_for(lambda: train_rows(runs_dir) >= 5 or not thread.is_alive(), timeout=240)
        filler = runs_dir / "filler"
        fill_disk(filler)  # while the phase writes metric rows
        thread.join(timeout=300)
        err = capsys.readouterr().err
        assert result["code"] == 1 and "Traceback" not in err, err
        lines = [line for line in err.splitlines() if line.startswith(("error:", "resume with:"))]
        store = RegistryStore(runs_dir / "registry.db", readonly=True)
        (run,) = store.list_runs()
        assert lines[0].startswith(f"error: no space left on the disk of {runs_dir} (")
        assert lines[1] == f"resume with: forge resume {run['id']} --runs-dir {runs_dir}"
        filler.unlink()  # space again: the printed command finishes the run
        code = submit.main(["--resume", run["id"], "--runs-dir", str(runs_dir)])
        captured = capsys.readouterr()
        assert code == 0, captured.err[-1500:] + captured.out[-1500:]
        assert store.get_run(run["id"])["status"] == "done"
        steps = sorted({m["step"] for m in store.metrics(run["id"], phase="fixture_train",
                                                         name="loss")})
        assert steps == list(range(1, 61))
        store.close()
    finally:
        subprocess.run(["umount", "--lazy", str(runs_dir)])
