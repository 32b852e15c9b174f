"""The one metrics call reaches the registry and W&B; W&B never prompts and stays in the run dir."""
from pathlib import Path

from forge.config import load_dict
from forge.config.sections import WandbConfig
from forge.pipeline.phase import PhaseContext
from forge.pipeline.wandb_sink import open_wandb
from forge.registry import RegistryStore


class StoreRecorder:
    def __init__(self, store):
        self.store, self.progress_seen = store, []

    def log_metrics(self, run_id, phase, step, values, model=""):
        return self.store.log_metrics(run_id, phase, step, values, model=model)

    def progress(self, phase, done, total, note=""):
        self.progress_seen.append((phase, done, total))


def test_log_metrics_writes_registry_and_wandb_offline(tmp_path: Path):
    store = RegistryStore(tmp_path / "registry.db")
    store.create_run("r", "x", "")
    sink = open_wandb(WandbConfig(mode="offline"), "r", "p", tmp_path / "r")
    recorder = StoreRecorder(store)
    ctx = PhaseContext("r", "p", 1, tmp_path / "r", tmp_path / "r" / "out", load_dict({}), recorder,
                       [sink])
    for step in range(3):
        ctx.log_metrics(step, {"loss": 1.0 / (step + 1)}, model="m")
    ctx.progress(3, 3)
    sink.finish()
    assert [round(r["value"], 3) for r in store.metrics("r", name="loss")] == [1.0, 0.5, 0.333]
    runs = list((tmp_path / "r" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and runs[0].stat().st_size > 0
    assert recorder.progress_seen == [("p", 3, 3)]


def test_wandb_disabled_opens_nothing(tmp_path):
    assert open_wandb(WandbConfig(mode="disabled"), "r", "p", tmp_path) is None
    assert not (tmp_path / "wandb").exists()
