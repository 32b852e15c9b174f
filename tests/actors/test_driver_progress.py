"""The driver hands each phase's progress to readers without Ray: runs/<run>/progress.json."""
import json

import pytest
import ray

from actors.driver import Driver
from forge.config import load_dict
from forge.console import RunReporter
from forge.pipeline.progress import read_progress
from forge.storage import RunStorage

pytestmark = pytest.mark.ray


@ray.remote(num_cpus=0)
class Steps:
    """Stands in for a PhaseActor: answers progress() with what the test set."""

    def __init__(self):
        self.state = {"done": 0, "total": 0, "note": ""}

    def set(self, done, total, note=""):
        self.state = {"done": done, "total": total, "note": note}

    def progress(self):
        return dict(self.state)


def test_progress_is_written_when_it_changes(ray_session, tmp_path):
    storage = RunStorage(tmp_path / "runs")
    driver = Driver(load_dict({}), "r1", storage, ["cognate"], registry=None,
                    reporter=RunReporter(min_interval_s=0))
    actor = Steps.remote()
    driver._show_progress(actor, "cognate")  # total 0: nothing to show yet
    assert read_progress(storage, "r1") is None
    ray.get(actor.set.remote(3, 12, "steps"))
    driver._show_progress(actor, "cognate")
    first = read_progress(storage, "r1")
    assert (first["phase"], first["done"], first["total"], first["note"]) == ("cognate", 3, 12, "steps")
    driver._show_progress(actor, "cognate")  # unchanged: the file is not rewritten
    assert json.loads((tmp_path / "runs" / "r1" / "progress.json").read_text())["time"] == first["time"]
    ray.get(actor.set.remote(5, 12, "steps"))
    driver._show_progress(actor, "cognate")  # within progress_every_s of the last write: later
    assert read_progress(storage, "r1")["done"] == 3
    ray.get(actor.set.remote(12, 12, "steps"))  # the end is always written
    driver._show_progress(actor, "cognate")
    assert read_progress(storage, "r1")["done"] == 12
    ray.kill(actor)
