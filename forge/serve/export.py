"""`forge export MODEL --format hf OUT`: a Hugging Face folder that loads without forge.

    OUT/
      config.json              CognateConfig + auto_map -> modeling_cognate.py (+ the names of
                               BitNet layers whose input is quantised to 8 bits)
      model.safetensors        full-precision weights; packed ternary layers unpacked to trits*scale
      modeling_cognate.py      generated from forge/models at export time (`forge.serve.hf_source`)
      tokenizer.json, tokenizer_config.json, special_tokens_map.json   (PreTrainedTokenizerFast)
      generation_config.json   bos/eos/pad ids, greedy by default
      README.md                model card: what it is, lineage, metrics, how to load it

    AutoModelForCausalLM.from_pretrained(OUT, trust_remote_code=True)   # logits equal forge's

OUT is written under a temporary name and renamed when complete: a failed export leaves nothing.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from forge.serve.hf_source import modeling_source
from forge.serve.source import ModelSource, ModelSourceError, load_source

MODELING_FILE = "modeling_cognate.py"
AUTO_MAP = {"AutoConfig": "modeling_cognate.CognateConfig",
            "AutoModelForCausalLM": "modeling_cognate.CognateForCausalLMExport"}
FORMATS = ("hf",)


def export_hf(source: ModelSource, out_dir: str | Path) -> Path:
    """Write the HF folder of `source` to `out_dir` (which must not exist or be empty)."""
    from transformers import GenerationConfig
    from transformers.utils import logging as hf_logging

    from forge.quant import ternary_layers

    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ModelSourceError(f"OUT {out}: exists and is not an empty folder; choose a new one")
    model, tok = load_source(source)
    act_bits = {name: layer.act_bits for name, layer in ternary_layers(model).items()}
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        hf_logging.disable_progress_bar()
        model.save_pretrained(partial, safe_serialization=True)  # TernaryLinear.weight = trits*scale
        _write_config(partial, act_bits)
        (partial / MODELING_FILE).write_text(modeling_source())
        tok.model_max_length = model.config.max_seq_len
        tok.save_pretrained(partial)
        _name_tokenizer_class(partial)
        GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, do_sample=False).save_pretrained(partial)
        params = sum(p.numel() for p in model.parameters())
        (partial / "README.md").write_text(model_card(source, params, act_bits))
        if out.exists():
            out.rmdir()
        partial.rename(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out


def _write_config(folder: Path, act_bits: dict[str, int]) -> None:
    """Point config.json at the generated modeling file; list the 8-bit-input layers."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["auto_map"] = AUTO_MAP
    config["architectures"] = ["CognateForCausalLMExport"]
    if act_bits:
        config["forge_activation_bits"] = act_bits
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _name_tokenizer_class(folder: Path) -> None:
    """Say `PreTrainedTokenizerFast` (the class every transformers release knows) in the config."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _lineage_lines(tree: dict[str, Any], depth: int = 0) -> list[str]:
    method = f" ({tree['method']})" if tree.get("method") else ""
    lines = [f"{'  ' * depth}- `{tree['id']}`{method}"]
    for parent in tree.get("parents", []):
        lines += _lineage_lines(parent, depth + 1)
    return lines


def model_card(source: ModelSource, params: int, act_bits: dict[str, int]) -> str:
    """README.md of the export: metadata header, lineage, metrics and the two load lines."""
    m = source.manifest
    kind = (f"BitNet b1.58 ternary ({len(act_bits)} layers unpacked to full precision, 8-bit "
            "activations kept)" if act_bits else "full precision")
    lineage = source.lineage or {"id": source.name, "parents": [
        {"id": p, "parents": []} for p in m.get("parents", [])]}
    metrics = m.get("metrics", {})
    lines = ["---", "library_name: transformers", "pipeline_tag: text-generation",
             "tags: [agent-forge, cognate, custom_code]", "---", "",
             f"# {source.name}", "",
             "A Cognate language model (TRM recursion x Titans MAG memory x per-position ACT) built "
             "by Agent Forge and exported with `forge export --format hf`.", "",
             f"- parameters: {params:,}", f"- weights: {kind}",
             f"- source digest: `{m.get('digest', 'unknown')}`", "",
             "## Lineage", "", *_lineage_lines(lineage), "", "## Metrics", ""]
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.6g} |" if isinstance(v, (int, float)) else f"| {k} | {v} |"
                  for k, v in sorted(metrics.items())]
    else:
        lines.append("(none recorded in the artifact's manifest)")
    lines += ["", "## Load", "", "```python",
              "from transformers import AutoModelForCausalLM, AutoTokenizer",
              "model = AutoModelForCausalLM.from_pretrained(PATH, trust_remote_code=True)",
              "tok = AutoTokenizer.from_pretrained(PATH, trust_remote_code=True)",
              "ids = tok('Question: 3 + 4 =', return_tensors='pt').input_ids",
              "print(tok.decode(model.generate(ids, max_new_tokens=8)[0]))", "```", "",
              "`modeling_cognate.py` was generated from forge's model sources; it needs only "
              "torch and transformers.", ""]
    return "\n".join(lines)
