"""Routing puts every parameter in exactly one group; QK-clip bounds the max logit by tau."""
from __future__ import annotations

import torch

from forge.models import CognateConfig, CognateForCausalLM
from forge.models.attention import SlidingWindowAttention
from forge.models.layers import rope_tables
from forge.optim import MuGrokfast, clip_factors, qk_clip_, route_parameters
from forge.config.optim import CognateOptim

TINY = dict(vocab_size=97, d_model=32, n_layers=2, n_heads=2, d_ff=64, window=6, memory_chunk=4)


def test_every_parameter_in_exactly_one_group() -> None:
    model = CognateForCausalLM(CognateConfig(**TINY))
    routing = route_parameters(model)
    ids = [id(p) for group in routing.groups().values() for _, p in group]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    muon = {n for n, _ in routing.muon}
    adamw = {n for n, _ in routing.adamw_decay + routing.adamw_no_decay}
    assert "model.embed_tokens.weight" in adamw  # also the tied lm_head
    assert all(p.ndim == 2 for _, p in routing.muon)
    for name in muon:
        assert not any(k in name for k in ("embed", "lm_head", "mag_gate", "mem_rates", "norm"))
    assert any("q_proj" in n for n in muon) and any("down_proj" in n for n in muon)
    assert any("mag_gate" in n for n in adamw) and any("mem_rates" in n for n in adamw)
    assert any("w1_init" in n for n in adamw) and "halt.q_bias" in adamw
    assert all(p.ndim < 2 for _, p in routing.adamw_no_decay)


def test_frozen_parameters_are_left_out() -> None:
    model = CognateForCausalLM(CognateConfig(**TINY))
    model.model.embed_tokens.weight.requires_grad_(False)
    names = {n for g in route_parameters(model).groups().values() for n, _ in g}
    assert "model.embed_tokens.weight" not in names


def test_optimizer_uses_torch_muon_and_adamw() -> None:
    opt = MuGrokfast(CognateForCausalLM(CognateConfig(**TINY)), CognateOptim())
    assert [type(o) for o in opt.optimizers] == [torch.optim.Muon, torch.optim.AdamW]


def _attn_max(attn: SlidingWindowAttention, x: torch.Tensor) -> torch.Tensor:
    cos, sin = rope_tables(x.shape[1], attn.head_dim, 10000.0, x.device, x.dtype)
    attn.reset_max_logit()
    attn(x, cos, sin)
    return attn.max_logit.clone()


def test_qk_clip_brings_each_head_to_tau_and_leaves_small_heads() -> None:
    torch.manual_seed(0)
    attn = SlidingWindowAttention(d_model=16, n_heads=2, window=8)
    with torch.no_grad():
        attn.q_proj.weight[:8] *= 20.0  # head 0: huge logits
        attn.k_proj.weight[:8] *= 20.0
    x = torch.randn(2, 12, 16)
    before = _attn_max(attn, x)
    tau = float(before[1]) + 1.0  # head 1 is under tau, head 0 far above
    assert before[0] > tau
    k1_before = attn.k_proj.weight[8:].clone()
    assert qk_clip_(attn, tau) == {"": 1}
    assert attn.max_logit is None  # record reset
    after = _attn_max(attn, x)
    torch.testing.assert_close(after[0], torch.tensor(tau), rtol=1e-4, atol=1e-4)
    assert after[0] <= tau + 1e-4
    assert torch.equal(attn.k_proj.weight[8:], k1_before)
    torch.testing.assert_close(after[1], before[1])


def test_clip_factors_formula() -> None:
    got = clip_factors(torch.tensor([120.0, 10.0]), 30.0)
    torch.testing.assert_close(got, torch.tensor([0.5, 1.0]))


def test_the_mixing_head_goes_to_adamw() -> None:
    """Quiet-STaR's mixing head ends in a 1-row matrix (one logit): not a hidden map for Muon."""
    model = CognateForCausalLM(CognateConfig(**TINY, thought_len=2))
    routing = route_parameters(model)
    adamw = {n for n, _ in routing.adamw_decay + routing.adamw_no_decay}
    mixing = [n for n, _ in model.named_parameters() if "mix_" in n]
    assert mixing and set(mixing) <= adamw
