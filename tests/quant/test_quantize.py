"""Absmean weights, absmax activations and the straight-through estimator (arXiv 2402.17764)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from forge.quant import TernaryLinear, quantize_activations, quantize_weights

shapes = st.tuples(st.integers(1, 12), st.integers(1, 40))
seeds = st.integers(0, 2**31 - 1)
magnitudes = st.sampled_from([1e-4, 0.02, 1.0, 300.0])


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=seeds, magnitude=magnitudes, per_channel=st.booleans())
def test_every_quantised_weight_is_a_trit_times_its_scale(shape, seed, magnitude, per_channel):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * magnitude
    trits, gamma = quantize_weights(w, per_channel=per_channel)
    assert trits.dtype == torch.int8 and trits.shape == w.shape
    assert set(trits.unique().tolist()) <= {-1, 0, 1}
    dims = tuple(range(1, w.dim())) if per_channel else None
    expected_gamma = w.abs().mean(dim=dims, keepdim=True) if per_channel else w.abs().mean()
    torch.testing.assert_close(gamma, expected_gamma + 1e-5)
    # RoundClip(W / gamma, -1, 1), written out independently.
    assert torch.equal(trits.float(), torch.clamp(torch.round(w / gamma), -1, 1))
    layer = TernaryLinear(shape[1], shape[0], bias=False, per_channel=per_channel)
    with torch.no_grad():
        layer.weight.copy_(w)
    w_q = layer.ternary_weight()
    ratio = w_q / gamma
    assert torch.equal(ratio, trits.float())  # each entry is exactly -gamma, 0 or +gamma


def test_per_channel_scales_have_one_row_per_output():
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])
    w = torch.arange(1, 8).float()[:, None] * signs  # (7, 5): row r has |w| = r + 1 everywhere
    trits, gamma = quantize_weights(w, per_channel=True)
    assert gamma.shape == (7, 1)
    torch.testing.assert_close(gamma.squeeze(1), torch.arange(1, 8).float() + 1e-5)
    assert torch.equal(trits, signs.expand(7, 5).to(torch.int8))
    assert quantize_weights(w)[1].shape == ()
    with pytest.raises(ValueError, match="per_channel"):
        quantize_weights(torch.randn(5), per_channel=True)


def test_zero_weight_gives_zero_trits():
    trits, gamma = quantize_weights(torch.zeros(3, 4))
    assert torch.count_nonzero(trits) == 0 and gamma.item() == pytest.approx(1e-5)


@settings(max_examples=40, deadline=None)
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 33)), seed=seeds,
       magnitude=magnitudes, bits=st.sampled_from([2, 4, 8]))
def test_activation_round_trip_error_is_at_most_half_a_step(shape, seed, magnitude, bits):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * magnitude
    codes, scale = quantize_activations(x, bits=bits)
    top = 2 ** (bits - 1) - 1
    assert scale.shape == (*shape[:-1], 1)
    peak = x.abs().amax(-1, keepdim=True)  # (..., 1)
    torch.testing.assert_close(scale, peak.clamp_min(1e-5) / top)
    assert torch.equal(codes, codes.round()) and codes.abs().max() <= top
    hits = codes.abs().amax(-1, keepdim=True) == top  # the largest entry of a token is +-(Q_b-1)
    assert torch.all(hits | (peak < 1e-5))  # ...unless eps floors a near-zero token's max
    err = (x - codes * scale).abs()
    assert torch.all(err <= scale / 2 * (1 + 1e-5))


def test_activation_bits_below_two_are_refused():
    with pytest.raises(ValueError, match="bits"):
        quantize_activations(torch.randn(2, 3), bits=1)


def _hand_forward(layer: TernaryLinear, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_q, W_q) of the layer, computed from the formulas with no autograd."""
    trits, gamma = quantize_weights(layer.weight, layer.per_channel)
    codes, scale = quantize_activations(x)
    return codes * scale, trits.float() * gamma


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 5), d_in=st.integers(1, 24), d_out=st.integers(1, 24), seed=seeds,
       bias=st.booleans(), per_channel=st.booleans())
def test_ste_gradient_is_the_gradient_of_the_quantised_weights(batch, d_in, d_out, seed, bias,
                                                                per_channel):
    g = torch.Generator().manual_seed(seed)
    layer = TernaryLinear(d_in, d_out, bias=bias, per_channel=per_channel)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(d_out, d_in, generator=g))
    x = torch.randn(batch, d_in, generator=g, requires_grad=True)
    target = torch.randn(batch, d_out, generator=g)
    y = layer(x)
    ((y - target) ** 2).sum().backward()
    x_q, w_q = _hand_forward(layer, x.detach())
    y_hand = x_q @ w_q.T + (layer.bias.detach() if bias else 0.0)
    assert torch.equal(y.detach(), torch.nn.functional.linear(x_q, w_q, layer.bias))
    torch.testing.assert_close(y.detach(), y_hand)
    d_y = 2 * (y_hand - target)  # (B, out): dL/dy
    torch.testing.assert_close(layer.weight.grad, d_y.T @ x_q)  # dL/dW_q, passed straight to W
    torch.testing.assert_close(x.grad, d_y @ w_q)  # dL/dx_q, passed straight to x
    if bias:
        torch.testing.assert_close(layer.bias.grad, d_y.sum(0))


def test_latent_weights_move_under_sgd_and_flip_trits():
    torch.manual_seed(0)
    layer = TernaryLinear(16, 8, bias=False)
    x, target = torch.randn(32, 16), torch.randn(32, 8)
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    before_trits, _ = layer.ternary()
    losses = []
    for _ in range(30):
        loss = ((layer(x) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert not torch.equal(layer.ternary()[0], before_trits)
