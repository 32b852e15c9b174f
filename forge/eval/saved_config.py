"""Checks the `config.json` of a saved Cognate model before transformers builds the model.

A hand-edited or corrupt config.json (`n_heads: 0`, `d_model: "banana"`) would otherwise surface
as a ZeroDivisionError or a dataclass validation traceback from deep inside the model. Each
architecture field is checked with the type and range of its key in the pipeline's `model`
section (forge/config/model.py), so the one-line error names the config.json key.
"""
from __future__ import annotations

import json
from pathlib import Path

from forge.config.model import HF_FIELDS, ModelConfig
from forge.config.schema import ConfigError, build


def read_config_json(path: Path) -> dict:
    """The parsed config.json; ConfigError naming the file when it is not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not a JSON config ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a JSON object")
    return data


def check_saved_config(path: Path) -> None:
    """Raise a one-line ConfigError naming the config.json key whose value the model cannot
    be built from. Non-Cognate configs (e.g. a GPT-2) are left to transformers."""
    data = read_config_json(path)
    if data.get("model_type") != "cognate":
        return
    vocab = data.get("vocab_size")
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 1:
        raise ConfigError(f"{path}: vocab_size: got {vocab!r}; allowed: an integer >= 1")
    nested: dict = {}
    for key, dotted in HF_FIELDS.items():
        if key in data:
            section, _, name = dotted.rpartition(".")
            (nested.setdefault(section, {}) if section else nested)[name] = data[key]
    try:
        build(ModelConfig, nested)
    except ConfigError as err:
        raise ConfigError(f"{path}: {_flat_names(str(err))}") from None


def _flat_names(message: str) -> str:
    """Speak config.json's names: 'attention.n_heads: got 0' -> 'n_heads: got 0'."""
    for flat, dotted in sorted(HF_FIELDS.items(), key=lambda kv: -len(kv[1])):
        message = message.replace(dotted, flat)
    return message
