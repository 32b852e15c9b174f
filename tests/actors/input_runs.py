"""Shared by phase tests that start a run from one saved model (`forge.submit --input`)."""
from __future__ import annotations

from pathlib import Path

from forge import submit
from forge.registry import RegistryStore


def submit_from(config: str, runs_dir: Path, artifact: tuple[Path, Path], *sets: str) -> int:
    """Run `config` from the model at artifact[0], with the tokenizer cache at artifact[1]."""
    path, tok = artifact
    args = ["--config", config, "--runs-dir", str(runs_dir), "--input", str(path),
            "--set", f"data.tokenizer_cache={tok}"]
    for s in sets:
        args += ["--set", s]
    return submit.main(args)


def only_run(runs_dir: Path) -> tuple[RegistryStore, str]:
    """The registry and the id of the one run in `runs_dir`."""
    store = RegistryStore(runs_dir / "registry.db", readonly=True)
    (r,) = store.list_runs()
    return store, r["id"]
