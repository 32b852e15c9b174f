"""Tiny Cognate parents for merge tests: one shared init, three children nudged apart (as
Phase 1 makes them), one torch thread (the machine is shared)."""
from __future__ import annotations

import pytest
import torch

from forge.models import CognateConfig, CognateForCausalLM
from tests.conftest import cognate_config


TINY = dict(vocab_size=64, d_model=32, n_layers=2, n_heads=2, d_ff=64, max_seq_len=32,
            window=6, memory_chunk=4, trm_T=2, trm_n=1, trm_supervision_steps=2)


def tiny_config(**overrides) -> CognateConfig:
    """2 blocks, 32 wide, vocab 64; memory, recursion and ACT on."""
    return cognate_config(TINY, **overrides)


def child_of(base: CognateForCausalLM, seed: int, sigma: float = 0.02) -> CognateForCausalLM:
    """A copy of `base` with Gaussian noise on every weight (the tie stays a tie)."""
    child = CognateForCausalLM(base.config).eval()
    child.load_state_dict(base.state_dict())
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in child.parameters():
            p.add_(sigma * torch.randn(p.shape, generator=gen))
    return child


@pytest.fixture(scope="module")
def family() -> dict:
    """{'config', 'base': model, 'children': [3 models]} built once per test module."""
    torch.manual_seed(0)
    config = tiny_config()
    base = CognateForCausalLM(config).eval()
    return {"config": config, "base": base, "children": [child_of(base, s) for s in (1, 2, 3)]}


def logits(model: CognateForCausalLM, seed: int = 0) -> torch.Tensor:
    """Eval logits (B, T, V) on fixed random tokens."""
    ids = torch.randint(0, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(ids).logits
