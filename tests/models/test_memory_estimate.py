"""The training-memory estimate against measured saved activations and exact parameter counts."""
from __future__ import annotations

import pytest
import torch

from forge.models import CognateConfig, CognateForCausalLM
from forge.models.memory_estimate import (estimate_training_memory, largest_batch,
                                          measure_saved_activation_bytes)
from forge.optim import route_parameters

BASE = dict(vocab_size=61, d_model=40, n_layers=1, n_heads=2, d_ff=56, window=8, memory_chunk=4,
            memory_dim=12, memory_hidden=28, trm_T=2, trm_n=1, trm_supervision_steps=1)


@pytest.mark.parametrize("fields, batch, seq, checkpointing", [
    ({}, 3, 24, False),
    ({}, 2, 30, False),  # partial last chunk
    (dict(n_layers=2, trm_n=2, trm_supervision_steps=2), 2, 16, False),
    (dict(d_model=64, n_heads=4, d_ff=160, memory_chunk=8), 2, 48, False),
    (dict(memory_enabled=False), 3, 24, False),
    (dict(n_layers=2, trm_n=2, trm_supervision_steps=2), 2, 16, True),
])
def test_activation_estimate_within_2_percent_of_measured(fields: dict, batch: int, seq: int,
                                                          checkpointing: bool) -> None:
    cfg = CognateConfig(**{**BASE, **fields})
    torch.manual_seed(0)
    model = CognateForCausalLM(cfg)
    if checkpointing:
        model.activation_checkpointing_enable()
    measured = measure_saved_activation_bytes(model, torch.randint(0, 61, (batch, seq)))
    est = estimate_training_memory(cfg, batch, seq, checkpointing=checkpointing).activations
    assert abs(est - measured) <= 0.02 * measured, (est, measured)


def test_params_grads_and_states_are_exact() -> None:
    cfg = CognateConfig(**BASE)
    model = CognateForCausalLM(cfg)
    routing = route_parameters(model)
    muon = sum(p.numel() for _, p in routing.muon)
    n = sum(p.numel() for p in model.parameters())
    est = estimate_training_memory(cfg, 1, 8)
    assert est.params == est.grads == 4 * n
    assert est.optimizer_states == 4 * (2 * muon + 3 * (n - muon))  # + Grokfast buffer each
    assert estimate_training_memory(cfg, 1, 8, optimizer="adamw").optimizer_states == 8 * n
    with pytest.raises(ValueError, match="optimizer"):
        estimate_training_memory(cfg, 1, 8, optimizer="lion")


def test_largest_batch_is_monotone_in_budget() -> None:
    cfg = CognateConfig(**BASE)
    one = estimate_training_memory(cfg, 1, 32).total
    assert largest_batch(cfg, 32, one - 1, per_process_overhead=0) == 0
    assert largest_batch(cfg, 32, 10 * one, per_process_overhead=0) >= 5
    assert largest_batch(cfg, 32, 10 * one, n_models=3, per_process_overhead=0) < \
        largest_batch(cfg, 32, 10 * one, per_process_overhead=0)
