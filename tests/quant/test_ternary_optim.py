"""MuGrokfast on TernaryLinear latent weights: Muon routing, the Grokfast filter, and QK-clip,
which bounds the ternary logits exactly only with per-head (or per-channel) scales."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from forge.config.optim import OptimConfig
from forge.models.attention import SlidingWindowAttention
from forge.models.layers import rope_tables
from forge.optim import build_optimizer, qk_clip_, route_parameters
from forge.quant import (QUANT_FILE, TernaryLinear, convert_to_ternary, load_ternary,
                         quantize_activations, quantize_weights, save_ternary, size_report, ternary_layers)
from tests.quant.conftest import small_model

IDS = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(4))
TAU = 30.0


def test_bitnet_preset():
    cfg = OptimConfig().for_phase("bitnet")
    assert (cfg.lr, cfg.grokfast_lambda, cfg.qk_clip_tau, cfg.grokfast_alpha) == (5e-4, 0.1, 30.0,
                                                                                   0.98)


def test_latent_weights_go_to_muon_and_the_rest_to_adamw():
    model = small_model()
    names = convert_to_ternary(model, head_scales=True)
    routing = route_parameters(model)
    muon = {n for n, _ in routing.muon}
    assert {f"{n}.weight" for n in names if "mag_gate" not in n} == muon
    adamw = {n for n, _ in routing.adamw_decay}
    assert "model.net.layers.0.mag_gate.weight" in adamw  # a gate, ternary but AdamW-routed
    assert "model.embed_tokens.weight" in adamw


def test_grokfast_filters_the_ste_gradient_and_steps_flip_trits():
    model = small_model()
    convert_to_ternary(model, head_scales=True)
    q = ternary_layers(model)["model.net.layers.0.attn.q_proj"]
    opt = build_optimizer(model, OptimConfig().for_phase("bitnet"))
    before_trits = q.ternary()[0].clone()
    losses = []
    for step in range(12):
        loss = model(IDS, labels=IDS).loss
        opt.zero_grad()
        loss.backward()
        raw = q.weight.grad.clone()
        opt.filter_gradients()
        if step == 0:  # mu starts at the first gradient (reference code): g <- (1 + lambda) g
            torch.testing.assert_close(q.weight.grad, raw * (1 + 0.1))
        opt.step()
        opt.qk_clip()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert not torch.equal(q.ternary()[0], before_trits)  # latent moves crossed gamma / 2


def _attention(**convert) -> tuple[SlidingWindowAttention, tuple]:
    """4 heads of 16; head 0's q/k rows scaled up so its logits exceed tau by far."""
    torch.manual_seed(0)
    att = SlidingWindowAttention(64, 4, 16)
    with torch.no_grad():
        for proj in (att.q_proj, att.k_proj):
            proj.weight.mul_(4.0)
            proj.weight[:16].mul_(6.0)
    convert_to_ternary(att, keep=(), **convert)
    x = torch.randn(2, 12, 64, generator=torch.Generator().manual_seed(1))
    cos, sin = rope_tables(12, 16, 10000.0, torch.device("cpu"), torch.float32)
    return att.train(), (x, cos, sin)


def _clip(att, args) -> tuple[torch.Tensor, torch.Tensor]:
    att(*args)
    before = att.max_logit.clone()
    qk_clip_(att, TAU)
    att(*args)
    return before, att.max_logit.clone()


@pytest.mark.parametrize("convert", [{"head_scales": True}, {"per_channel": True}])
def test_qk_clip_bounds_the_ternary_logits_with_per_head_scales(convert):
    att, args = _attention(**convert)
    assert att.q_proj.group_rows == (16 if "head_scales" in convert else None)
    trits = att.q_proj.ternary()[0].clone()
    before, after = _clip(att, args)
    assert before[0] > 3 * TAU and (before[1:] < TAU).all()
    torch.testing.assert_close(after[0], torch.tensor(TAU), rtol=1e-3, atol=0)  # exactly tau
    assert torch.equal(after[1:], before[1:])  # other heads untouched
    assert torch.equal(att.q_proj.ternary()[0], trits)  # the clip rescaled, no trit flipped


def test_with_one_scale_per_tensor_qk_clip_does_not_bound_the_logits():
    att, args = _attention()
    trits = att.q_proj.ternary()[0].clone()
    before, after = _clip(att, args)
    assert before[0] > TAU
    assert after[0] > TAU  # the shared absmean shrank too: head 0 keeps most of its trits
    assert not torch.equal(att.q_proj.ternary()[0], trits)


def test_group_scales_are_the_absmean_of_each_row_group():
    w = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    trits, gamma = quantize_weights(w, group_rows=4)
    assert gamma.shape == (8, 1)
    torch.testing.assert_close(gamma[:4, 0], w[:4].abs().mean().expand(4) + 1e-5)
    torch.testing.assert_close(gamma[4:, 0], w[4:].abs().mean().expand(4) + 1e-5)
    assert torch.equal(trits.float(), torch.clamp(torch.round(w / gamma), -1, 1))
    with pytest.raises(ValueError, match="group_rows=3 must divide"):
        quantize_weights(w, group_rows=3)
    with pytest.raises(ValueError, match="group_rows=3 must divide out_features=8"):
        TernaryLinear(5, 8, group_rows=3)


def test_head_scales_export_one_scale_per_head_and_reload_exactly(tmp_path: Path):
    model = small_model()  # d_model 64, 2 heads
    convert_to_ternary(model, head_scales=True)
    model.eval()
    manifest = save_ternary(model, tmp_path)
    entry = manifest["packed"]["model.net.layers.0.attn.k_proj.weight"]
    assert entry["group_rows"] == 32 and entry["scale_shape"] == [2, 1]
    assert "group_rows" not in manifest["packed"]["model.net.layers.0.attn.v_proj.weight"]
    loaded = load_ternary(tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded(IDS).logits, model(IDS).logits)
    report = size_report(tmp_path)
    layers = ternary_layers(model)
    scales = sum(2 if l.group_rows else 1 for l in layers.values())
    assert report["linear_bytes"] == sum(-(-l.weight.numel() // 5) for l in layers.values()) + 4 * scales
    assert report["linear_bits_per_weight"] <= 1.62


def test_a_bad_group_rows_entry_is_refused(tmp_path: Path):
    model = small_model()
    convert_to_ternary(model, head_scales=True)
    save_ternary(model, tmp_path)
    manifest = json.loads((tmp_path / QUANT_FILE).read_text())
    manifest["packed"]["model.net.layers.0.attn.q_proj.weight"]["group_rows"] = 5
    (tmp_path / QUANT_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"q_proj\.weight\.group_rows 5 must be an integer >= 1 "
                                         "dividing"):
        load_ternary(tmp_path)


def test_ste_gradient_with_row_group_scales_is_the_gradient_of_the_quantised_weight():
    g = torch.Generator().manual_seed(3)
    layer = TernaryLinear(12, 8, bias=False, group_rows=4)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(8, 12, generator=g) * torch.tensor([1.0] * 4 + [5.0] * 4)[:, None])
    x, target = torch.randn(5, 12, generator=g), torch.randn(5, 8, generator=g)
    y = layer(x)
    ((y - target) ** 2).sum().backward()
    trits, gamma = quantize_weights(layer.weight, group_rows=4)
    assert gamma[0, 0] != gamma[4, 0]  # the two groups have their own scale
    codes, scale = quantize_activations(x)
    x_q, w_q = codes * scale, trits.float() * gamma
    d_y = 2 * (x_q @ w_q.T - target)
    torch.testing.assert_close(layer.weight.grad, d_y.T @ x_q)
