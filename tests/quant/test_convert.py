"""convert_to_ternary on Cognate: which layers change, what stays, and that it still trains."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from forge.models.layers import RMSNorm
from forge.quant import DEFAULT_KEEP, TernaryLinear, convert_to_ternary, ternary_layers
from tests.quant.conftest import small_model

PER_LAYER = ["attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "memory.mem_query",
             "memory.mem_key", "memory.mem_value", "memory.mem_out", "mag_gate", "mlp.gate_proj",
             "mlp.up_proj", "mlp.down_proj"]


def test_every_projection_is_converted_and_the_rest_untouched():
    model = small_model(n_layers=2)
    embed, head = model.model.embed_tokens, model.lm_head
    norms = {n: m.weight for n, m in model.named_modules() if isinstance(m, RMSNorm)}
    rates = model.model.net.layers[0].memory.mem_rates
    q_weight = model.model.net.layers[0].attn.q_proj.weight
    names = convert_to_ternary(model)
    assert sorted(names) == sorted(f"model.net.layers.{i}.{p}" for i in range(2) for p in PER_LAYER)
    assert set(ternary_layers(model)) == set(names)
    assert model.model.embed_tokens is embed and type(embed) is nn.Embedding
    assert model.lm_head is head and type(head) is nn.Linear
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied
    assert model.model.net.layers[0].memory.mem_rates is rates and type(rates) is nn.Linear
    for name, module in model.named_modules():
        if isinstance(module, RMSNorm):
            assert module.weight is norms[name]
    q = model.model.net.layers[0].attn.q_proj
    assert isinstance(q, TernaryLinear) and q.weight is q_weight  # latent weight shared
    assert convert_to_ternary(model) == []  # idempotent
    assert {"embed", "lm_head", "norm", "mem_rates"} == set(DEFAULT_KEEP)


def test_keep_list_is_configurable():
    model = small_model()
    names = convert_to_ternary(model, keep=("embed", "lm_head", "mlp"))
    assert not any("mlp" in n for n in names)
    assert "model.net.layers.0.memory.mem_rates" in names
    assert isinstance(model.model.net.layers[0].mlp.up_proj, nn.Linear)
    assert not isinstance(model.model.net.layers[0].mlp.up_proj, TernaryLinear)


def test_a_tied_head_cannot_be_converted_alone():
    model = small_model()
    with pytest.raises(ValueError, match="embed_tokens.weight shares its weight"):
        convert_to_ternary(model, keep=("norm",))


def test_converted_model_runs_and_trains_a_step():
    model = small_model()
    ids = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        fp_logits = model(ids).logits
    names = convert_to_ternary(model)
    with torch.no_grad():
        q_logits = model(ids).logits
    assert torch.isfinite(q_logits).all() and not torch.equal(q_logits, fp_logits)
    model.train()
    layers = ternary_layers(model)
    before = {n: layer.weight.detach().clone() for n, layer in layers.items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = model(ids, labels=ids).loss
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    for name in names:
        grad = layers[name].weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    opt.step()
    assert all(not torch.equal(layers[n].weight, before[n]) for n in names)
    assert model.lm_head.weight is model.model.embed_tokens.weight
