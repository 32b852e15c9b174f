"""Bad input names the field; ModelConfig maps onto CognateConfig; shipped presets load."""
from __future__ import annotations

import pytest

from forge.config import ConfigError, load_dict
from forge.config.model import ModelConfig
from forge.models import CognateConfig, cognate_config_from


@pytest.mark.parametrize("fields, key", [
    (dict(d_model=30, n_heads=4), "n_heads"),
    (dict(d_model=24, n_heads=8), "n_heads"),  # head size 3: odd, no RoPE pairs
    (dict(memory_chunk=0), "memory_chunk"),
    (dict(trm_T=0), "trm_T"),
    (dict(act_threshold=1.5), "act_threshold"),
    (dict(memory_decay_init=1.0), "memory_decay_init"),
])
def test_cognate_config_errors_name_the_field(fields: dict, key: str) -> None:
    with pytest.raises(ValueError, match=rf"CognateConfig\.{key}"):
        CognateConfig(**fields)


@pytest.mark.parametrize("model, key", [
    ({"d_model": 130, "attention": {"n_heads": 4}}, "model.attention.n_heads"),
    ({"trm": {"T": 0}}, "model.trm.T"),
    ({"memory": {"chunk_size": 0}}, "model.memory.chunk_size"),
    ({"act": {"threshold": 1.2}}, "model.act.threshold"),
    ({"layers": 3}, "model.layers"),
])
def test_model_section_errors_name_the_key(model: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_dict({"model": model})


def test_cognate_config_from_model_section() -> None:
    cfg = cognate_config_from(ModelConfig(), vocab_size=500, trm_T=3)
    assert (cfg.vocab_size, cfg.d_model, cfg.trm_T, cfg.memory_dim) == (500, 128, 3, 64)
    assert cfg.tie_word_embeddings
    with pytest.raises(ValueError, match="unknown override"):
        cognate_config_from(ModelConfig(), vocab_size=500, d_modle=3)
