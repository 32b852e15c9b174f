"""Shared fixtures: tiny Cognate configs, one torch thread (the machine is shared; OpenMP
threads on a busy 2-core box stall far more than one thread runs slower)."""
from __future__ import annotations

import pytest
import torch

from forge.models import CognateConfig
from tests.conftest import cognate_config


TINY = dict(vocab_size=97, d_model=32, n_layers=2, n_heads=2, d_ff=64, max_seq_len=64,
            window=6, memory_chunk=4, trm_T=2, trm_n=2, trm_supervision_steps=2)


def tiny_config(**overrides) -> CognateConfig:
    """A 2-layer, 32-wide Cognate with memory, recursion and ACT all on; chunk 4, window 6."""
    return cognate_config(TINY, **overrides)


@pytest.fixture
def tiny() -> CognateConfig:
    return tiny_config()
