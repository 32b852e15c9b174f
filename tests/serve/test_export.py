"""`forge export --format hf`: the folder loads with trust_remote_code where forge cannot be
imported, and its logits equal forge's for both artifact kinds (fp and packed ternary)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from forge.cli import main
from forge.data.tokenizer import load_tokenizer
from forge.eval.generate import greedy_generate
from forge import load_model
from forge.serve import hf_source
from forge.serve.export import export_hf
from forge.serve.source import ModelSourceError, resolve_model

HERE = Path(__file__).parent
IDS = [[11, 40, 99, 7, 260, 31, 150], [200, 12, 13, 14, 90, 91, 92]]  # no pad id (2) inside
KINDS = ("cognate/fp", "bitnet/ternary")


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("exported")
    return {kind: export_hf(resolve_model(str(tiny_run / kind)), out / kind.replace("/", "-"))
            for kind in KINDS}


@pytest.mark.slow
def test_exported_folders_load_without_forge_with_equal_logits(tiny_run, exported, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_MODULES_CACHE"] = str(tmp_path / "hf-modules")  # no stale copy of the modeling file
    proc = subprocess.run([sys.executable, str(HERE / "load_without_forge.py"), json.dumps(IDS),
                           *map(str, exported.values())], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(KINDS)
    tok = load_tokenizer(tiny_run / "tokenizer.json")
    for kind, got in zip(KINDS, results):
        model = load_model(tiny_run / kind)
        with torch.no_grad():
            want = model(torch.tensor(IDS)).logits
        assert got["forge_modules"] == [] and got["model_class"] == "CognateForCausalLMExport"
        assert torch.equal(torch.tensor(got["logits"]), want), kind  # bit-exact, not close
        greedy = greedy_generate(model, [IDS[0]], 4, eos_id=-1, pad_id=tok.pad_token_id)[0]
        assert got["generated"] == greedy, kind
        long = greedy_generate(model, [IDS[0]], 20, eos_id=-1, pad_id=tok.pad_token_id)[0]
        assert got["long_cached"] == got["long_uncached"] == long, kind  # KV cache, exported
        assert got["encoded"] == tok.encode("hello world", add_special_tokens=False)
        assert got["fast_tokenizer"]


def test_export_folder_has_weights_tokenizer_generation_config_and_card(exported):
    tern = exported["bitnet/ternary"]
    names = {p.name for p in tern.iterdir()}
    assert {"config.json", "model.safetensors", "modeling_cognate.py", "tokenizer.json",
            "tokenizer_config.json", "generation_config.json", "README.md"} <= names
    assert "quantization.json" not in names  # weights are full precision
    config = json.loads((tern / "config.json").read_text())
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_cognate.CognateForCausalLMExport"
    assert set(config["forge_activation_bits"].values()) == {8}
    assert "forge_activation_bits" not in json.loads((exported["cognate/fp"] / "config.json").read_text())
    tok_cfg = json.loads((tern / "tokenizer_config.json").read_text())
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast" and tok_cfg["eos_token"] == "<|eos|>"
    gen = json.loads((tern / "generation_config.json").read_text())
    assert gen["eos_token_id"] == 1 and gen["pad_token_id"] == 2
    card = (tern / "README.md").read_text()
    assert "r1/cognate/fp" in card and "val_bpb | 2.75" in card and "ternary" in card


def test_modeling_file_is_generated_from_the_current_sources():
    text = hf_source.modeling_source()
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imports if "forge" in line]
    assert "def cognate_config_from" not in text  # it needs forge.config: dropped with its import
    source = Path(hf_source._source_file("forge.models.memory")).read_text()
    assert "def memory_grad(" in source and "def memory_grad(" in text  # the real code, comments too
    assert "# (B, L, H)" in text


def test_a_name_defined_twice_is_an_error(monkeypatch):
    monkeypatch.setattr(hf_source, "EXTRA_DEFINITIONS", (("forge.models.layers", ("RMSNorm",)),))
    with pytest.raises(hf_source.SourceError, match="RMSNorm"):
        hf_source.modeling_source()


def test_cli_exports_and_rejects_bad_input_without_writing(tiny_run, tmp_path, capsys):
    out = tmp_path / "hf"
    assert main(["export", str(tiny_run / "cognate/fp"), "--format", "hf", str(out)]) == 0
    assert (out / "modeling_cognate.py").is_file()
    cases = [([str(tiny_run / "cognate/fp"), "--format", "hf", str(out)], "not an empty folder"),
             ([str(tiny_run / "cognate/fp"), "--format", "gguf", str(tmp_path / "a")], "--format"),
             ([str(tmp_path / "missing"), "--format", "hf", str(tmp_path / "b")], "neither"),
             (["r1/cognate/none", "--format", "hf", str(tmp_path / "c"), "--runs-dir",
               str(tmp_path)], "neither")]
    for argv, message in cases:
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]  # nothing half-written


def test_missing_tokenizer_and_broken_weights_are_one_line_errors(tiny_run, tmp_path):
    import shutil

    lonely = tmp_path / "lonely"
    shutil.copytree(tiny_run / "cognate/fp", lonely)
    with pytest.raises(ModelSourceError, match="tokenizer"):
        resolve_model(str(lonely))
    (lonely / "model.safetensors").write_bytes(b"not safetensors")
    source = resolve_model(str(lonely), tokenizer=str(tiny_run / "tokenizer.json"))
    with pytest.raises(ModelSourceError, match="cannot load"):
        export_hf(source, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()
