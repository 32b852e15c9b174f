"""Tiny Cognate configs for the quantisation tests, one torch thread (the machine is shared)."""
from __future__ import annotations

import pytest
import torch

from forge.models import CognateConfig, CognateForCausalLM
from tests.conftest import cognate_config


SMALL = dict(vocab_size=64, d_model=64, n_layers=1, n_heads=2, d_ff=128, max_seq_len=32,
             window=6, memory_chunk=4, trm_T=2, trm_n=1, trm_supervision_steps=1)


def small_config(**overrides) -> CognateConfig:
    """1 layer, 64 wide (so every ternary layer has >= 2048 weights), vocab 64, memory on."""
    return cognate_config(SMALL, **overrides)


def small_model(seed: int = 0, **overrides) -> CognateForCausalLM:
    torch.manual_seed(seed)
    return CognateForCausalLM(small_config(**overrides))
