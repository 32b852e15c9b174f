"""pipeline.inputs: a run starts from saved artifacts or registered models, checked up front."""
import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from forge.pipeline import save_artifact
from forge.pipeline.inputs import (InputModelError, resolve_inputs, stage_inputs, staged_inputs)
from forge.registry import RegistryStore


def tiny_artifact(path):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, n_positions=8))
    save_artifact(model, path, metadata={"vocab": 16})
    return path


def test_directory_input_is_checked_copied_and_recorded(tmp_path):
    src = tiny_artifact(tmp_path / "elsewhere" / "champion")
    (source,) = resolve_inputs([str(src)], tmp_path / "runs")
    assert source.registered_id is None and source.path == src.resolve()
    run_dir = tmp_path / "runs" / "r1"
    ((name, copy),) = stage_inputs([source], run_dir)
    assert name == "0-champion" and copy == run_dir / "inputs" / "0-champion"
    assert (copy / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()
    ((name2, copy2, again),) = staged_inputs(run_dir)
    assert (name2, copy2, again.digest) == (name, copy, source.digest)
    # the source may go away: a resumed run only needs its own copy
    (src / "model.safetensors").unlink()
    assert len(staged_inputs(run_dir)) == 1


def test_registered_model_id_is_found_in_the_registry(tmp_path):
    runs = tmp_path / "runs"
    src = tiny_artifact(runs / "old" / "cognate" / "memory")
    manifest = json.loads((src / "manifest.json").read_text())
    store = RegistryStore(runs / "registry.db")
    store.create_run("old", "x", "{}")
    store.register_model("old/cognate/memory", "old", "cognate", "memory", "old/cognate/memory",
                         manifest["digest"], manifest["bytes"], manifest["params"], {})
    store.close()
    (source,) = resolve_inputs(["old/cognate/memory"], runs)
    assert source.registered_id == "old/cognate/memory" and source.path == src.resolve()


@pytest.mark.parametrize("spec, message", [
    ("no/such/model", "neither an artifact directory nor a model id"),
    ("missing-dir", "neither an artifact directory nor a model id"),
])
def test_unknown_input_names_the_entry(tmp_path, spec, message):
    with pytest.raises(InputModelError, match=r"pipeline.inputs\[0\]: .*" + message):
        resolve_inputs([spec], tmp_path)


def test_corrupt_inputs_are_refused(tmp_path):
    src = tiny_artifact(tmp_path / "a" / "m")
    (src / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(InputModelError, match=r"pipeline.inputs\[0\]: .*does not match its sha256"):
        resolve_inputs([str(src)], tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InputModelError, match="no manifest.json"):
        resolve_inputs([str(plain)], tmp_path)


def test_a_corrupted_staged_copy_is_reported(tmp_path):
    (source,) = resolve_inputs([str(tiny_artifact(tmp_path / "m"))], tmp_path)
    ((_, copy),) = stage_inputs([source], tmp_path / "run")
    (copy / "config.json").write_text("{}")
    with pytest.raises(InputModelError, match="staged input 0-m: .*config.json"):
        staged_inputs(tmp_path / "run")


def test_the_source_runs_tokenizer_comes_along(tmp_path):
    src = tiny_artifact(tmp_path / "old-run" / "cognate" / "m")
    (tmp_path / "old-run" / "tokenizer.json").write_text('{"vocab": 1}')
    (source,) = resolve_inputs([str(src)], tmp_path)
    stage_inputs([source], tmp_path / "new-run")
    assert (tmp_path / "new-run" / "tokenizer.json").read_text() == '{"vocab": 1}'
    other = tiny_artifact(tmp_path / "other-run" / "cognate" / "m")
    (tmp_path / "other-run" / "tokenizer.json").write_text('{"vocab": 2}')
    with pytest.raises(InputModelError, match="different tokenizers"):
        resolve_inputs([str(src), str(other)], tmp_path)


def test_the_tokenizer_file_name_matches_the_data_package():
    from forge.data.tokenizer import TOKENIZER_FILE
    from forge.pipeline import inputs

    assert inputs.TOKENIZER_FILE == TOKENIZER_FILE


def _manifest(src):
    return json.loads((src / "manifest.json").read_text())


@pytest.mark.parametrize("change, message", [
    (lambda src, m: m.pop("files"), "not a forge manifest (needs 'files'"),
    (lambda src, m: m.update(files={}), "lists no .safetensors weights"),
    (lambda src, m: m["files"].update({"/etc/passwd": "0" * 64}),
     "file entry '/etc/passwd' is not a file name inside"),
    (lambda src, m: m["files"].update({"../x.safetensors": "0" * 64}),
     "file entry '../x.safetensors' is not a file name inside"),
    (lambda src, m: (src / "extra").symlink_to("/etc/hostname"), "extra is a symlink"),
])
def test_an_input_manifest_is_not_trusted(tmp_path, change, message):
    src = tiny_artifact(tmp_path / "a" / "m")
    manifest = _manifest(src)
    change(src, manifest)
    (src / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputModelError, match=r"pipeline.inputs\[0\]: .*") as err:
        resolve_inputs([str(src)], tmp_path / "runs")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists()


def test_staging_copies_only_the_verified_files(tmp_path):
    src = tiny_artifact(tmp_path / "a" / "m")
    (source,) = resolve_inputs([str(src)], tmp_path / "runs")
    (src / "notes.txt").write_text("not in the manifest")  # appears after the check
    ((_, copy),) = stage_inputs([source], tmp_path / "runs" / "r1")
    assert sorted(p.name for p in copy.iterdir()) == sorted([*_manifest(src)["files"], "manifest.json"])
