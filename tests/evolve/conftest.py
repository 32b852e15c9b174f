"""Tiny Cognate family for evolution tests: tests/cognate_tiny.yaml sizes (d_model 32, vocab
320, window 16, memory chunk 8, T=n=1) with 2 blocks so layer plans can mix A and B; one seed
model and three children nudged apart from it, as Phase 1 makes them."""
from __future__ import annotations

import pytest
import torch

from forge.evolve import EvolveSettings
from forge.models import CognateConfig, CognateForCausalLM
from tests.conftest import cognate_config

TINY = dict(vocab_size=320, d_model=32, n_layers=2, n_heads=2, d_ff=64, max_seq_len=64,
            window=16, memory_chunk=8, trm_T=1, trm_n=1, trm_supervision_steps=1)


def tiny_config(**overrides) -> CognateConfig:
    return cognate_config(TINY, **overrides)


def nudged(sd: dict, seed: int, sigma: float = 0.02) -> dict:
    """A copy of state dict `sd` with Gaussian noise on every float tensor (ties kept)."""
    model = CognateForCausalLM(tiny_config())
    model.load_state_dict(sd)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(sigma * torch.randn(p.shape, generator=gen))
    return model.state_dict()


@pytest.fixture(scope="module")
def family() -> dict:
    """{'config', 'base': seed state dict, 'parents': 3 state dicts}."""
    torch.manual_seed(0)
    config = tiny_config()
    base = CognateForCausalLM(config).eval().state_dict()
    return {"config": config, "base": base, "parents": [nudged(base, s) for s in (1, 2, 3)]}


def load(sd: dict, config: CognateConfig) -> CognateForCausalLM:
    """A model holding `sd` (strict load: every key and shape must match the config)."""
    model = CognateForCausalLM(config).eval()
    model.load_state_dict(sd, strict=True)
    return model


def logits(model: CognateForCausalLM, seed: int = 0) -> torch.Tensor:
    ids = torch.randint(0, model.config.vocab_size, (2, 12),
                        generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(ids).logits


@pytest.fixture
def settings() -> EvolveSettings:
    return EvolveSettings()
