"""Models a run starts from (`pipeline.inputs`): any saved artifact or registered model.

A plan that begins after Phase 1 (`--phases quiet_star..bitnet`) needs models to begin with.
Each entry is an artifact directory or a registered model id (`run/phase/name`, looked up in the
runs dir's registry). Entries are checked before anything starts, then copied into the run as
`runs/<run>/inputs/<name>/`: the run stays self-contained (resume and clean-up never depend on a
directory outside it) and the copy is registered with a lineage edge to where it came from. The
tokenizer of the run the models come from comes along (a run has one vocabulary).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from forge.pipeline.artifacts import (MANIFEST, ArtifactError, ModelRef, read_manifest, sha256_file,
                                      verify_artifact)
from forge.registry import RegistryError, RegistryStore
from forge.storage import RunStorage

INPUTS_DIR = "inputs"
TOKENIZER_FILE = "tokenizer.json"  # forge.data.tokenizer's name (not imported: it loads transformers)
STAGED_FILE = "inputs.json"  # what was staged, so a resumed run needs no source any more


class InputModelError(ValueError):
    """An entry of `pipeline.inputs` names no usable model."""


@dataclass(frozen=True)
class InputSource:
    """A checked entry of `pipeline.inputs`: where its artifact is and what it is called."""

    spec: str
    path: Path
    registered_id: str | None  # the source's registry id, when it came from the registry
    digest: str
    tokenizer: str | None = None  # the tokenizer.json of the run the model came from, if found


def _registry_path(spec: str, storage: RunStorage) -> tuple[Path, str] | None:
    db = storage.registry_path
    if spec.count("/") != 2 or not db.is_file():
        return None
    store = RegistryStore(db, readonly=True)
    try:
        row = store.get_model(spec)
    except RegistryError:
        return None
    finally:
        store.close()
    storage.pull(row["path"].rsplit("/", 2)[0] + "/" + TOKENIZER_FILE)  # the run's vocabulary
    return storage.pull(row["path"]), row["sha256"]


def resolve_inputs(specs: tuple[str, ...] | list[str],
                   runs: str | Path | RunStorage) -> list[InputSource]:
    """Check every entry: a registered id (its artifact must match the registry's digest) or an
    artifact directory (its files must match its manifest). InputModelError names the entry."""
    storage = runs if isinstance(runs, RunStorage) else RunStorage(runs)
    sources = []
    for i, spec in enumerate(specs):
        where = f"pipeline.inputs[{i}]"
        found = _registry_path(spec, storage)
        path, expected = found if found else (Path(spec), None)
        if not path.is_dir():
            raise InputModelError(f"{where}: {spec!r} is neither an artifact directory nor a model "
                                  f"id in {storage.registry_path}")
        try:
            manifest = verify_artifact(path, expected)
        except ArtifactError as err:
            raise InputModelError(f"{where}: {err}") from None
        sources.append(InputSource(spec, path.resolve(), spec if found else None,
                                   manifest["digest"], _run_tokenizer(path.resolve())))
    tokenizers = {sha256_file(s.tokenizer) for s in sources if s.tokenizer}
    if len(tokenizers) > 1:
        raise InputModelError("pipeline.inputs: the models come from runs with different "
                              "tokenizers; a run has one vocabulary")
    return sources


def _run_tokenizer(artifact: Path) -> str | None:
    """The tokenizer of the run an artifact belongs to (runs/<run>/<phase>/<name>), if any."""
    for parent in list(artifact.parents)[:3]:
        if (parent / TOKENIZER_FILE).is_file():
            return str(parent / TOKENIZER_FILE)
    return None


def input_name(index: int, source: InputSource) -> str:
    """Name of the copy inside the run: position and source directory, e.g. '0-champion'."""
    return f"{index}-{source.path.name}"


def stage_inputs(sources: list[InputSource], run_dir: Path) -> list[tuple[str, Path]]:
    """Copy each source into `run_dir/inputs/<name>` (kept when an earlier copy still verifies,
    so a resumed run reuses it). Returns (name, copy) pairs."""
    staged: list[tuple[str, Path]] = []
    if not sources:
        return staged
    for i, source in enumerate(sources):
        name = input_name(i, source)
        copy = Path(run_dir) / INPUTS_DIR / name
        if copy.is_dir():
            try:
                verify_artifact(copy, source.digest)
                staged.append((name, copy))
                continue
            except ArtifactError:
                shutil.rmtree(copy)
        partial = copy.with_name(f".{name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for file in [*read_manifest(source.path)["files"], MANIFEST]:  # what was verified, only
            shutil.copyfile(source.path / file, partial / file, follow_symlinks=False)
        partial.rename(copy)
        staged.append((name, copy))
    tokenizer = next((s.tokenizer for s in sources if s.tokenizer), None)
    if tokenizer and not (Path(run_dir) / TOKENIZER_FILE).is_file():
        shutil.copyfile(tokenizer, Path(run_dir) / TOKENIZER_FILE)  # the models' vocabulary
    record = [{"name": n, **asdict(s), "path": str(s.path)} for (n, _), s in zip(staged, sources)]
    (Path(run_dir) / INPUTS_DIR / STAGED_FILE).write_text(json.dumps(record, indent=1))
    return staged


def staged_inputs(run_dir: Path) -> list[tuple[str, Path, InputSource]]:
    """The inputs an earlier invocation staged (resume); InputModelError if a copy no longer
    verifies."""
    record_file = Path(run_dir) / INPUTS_DIR / STAGED_FILE
    if not record_file.is_file():
        return []
    out = []
    for item in json.loads(record_file.read_text()):
        copy = record_file.parent / item["name"]
        try:
            verify_artifact(copy, item["digest"])
        except ArtifactError as err:
            raise InputModelError(f"staged input {item['name']}: {err}") from None
        out.append((item["name"], copy, InputSource(item["spec"], Path(item["path"]),
                                                    item["registered_id"], item["digest"],
                                                    item.get("tokenizer"))))
    return out


def input_ref(run_id: str, name: str, copy: Path, manifest: dict) -> ModelRef:
    """The ModelRef handed to the first phase for a staged input."""
    return ModelRef(id=f"{run_id}/{INPUTS_DIR}/{name}", path=str(copy), digest=manifest["digest"],
                    params=manifest["params"], metadata=manifest.get("metadata", {}))
