"""Shipped model presets load and have the parameter counts they promise."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from forge.config import DEFAULT_CONFIG, load
from forge.models import CognateForCausalLM, cognate_config_from

PRESET_25M = Path(DEFAULT_CONFIG).parent / "presets" / "25m-6gb.yaml"


def _params(path: Path) -> int:
    cfg = load(path)
    with torch.device("meta"):  # shapes only, no allocation
        model = CognateForCausalLM(cognate_config_from(cfg.model, cfg.data.vocab_size))
    return sum(p.numel() for p in model.parameters())  # the tied head counts once


def test_25m_preset_has_22_5_to_27_5_million_parameters() -> None:
    cfg = load(PRESET_25M)
    assert cfg.data.vocab_size == 32768
    assert 22_500_000 <= _params(PRESET_25M) <= 27_500_000


def test_default_config_is_cpu_sized() -> None:
    cfg = load(DEFAULT_CONFIG)
    assert cfg.data.vocab_size == 2048
    assert 0.3e6 <= _params(DEFAULT_CONFIG) <= 2e6


@pytest.mark.parametrize("path", [DEFAULT_CONFIG, PRESET_25M])
def test_preset_header_shows_its_command(path: Path) -> None:
    head = Path(path).read_text().splitlines()[:4]
    assert head[0].startswith("#") and any("python -m forge.submit" in line for line in head)
    assert any("--set" in line for line in Path(path).read_text().splitlines()[:8])


def test_override_on_preset_is_validated() -> None:
    cfg = load(PRESET_25M, ["model.trm.T=2"])
    assert cfg.model.trm.T == 2 and cfg.model.d_model == 384
