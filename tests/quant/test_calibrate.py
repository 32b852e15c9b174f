"""Calibration statistics: computed by hand on one layer, sane on Cognate, model untouched."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from forge.quant import calibrate, convert_to_ternary, quantize_activations, quantize_weights
from forge.quant.calibrate import summarise
from tests.quant.conftest import small_model

IDS = torch.randint(0, 64, (3, 16), generator=torch.Generator().manual_seed(5))


def test_statistics_of_one_layer_match_the_formulas():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(24, 16, bias=False))
    x = torch.randn(2, 7, 24) * torch.linspace(0.1, 3.0, 24)  # uneven channels
    (stats,) = calibrate(net, [x], keep=()).values()
    flat = x.reshape(-1, 24)
    codes, scale = quantize_activations(flat, 8)
    x_q = codes * scale
    trits, gamma = quantize_weights(net[0].weight)
    w, w_q = net[0].weight.detach(), trits.float() * gamma
    assert stats.calls == 1 and stats.act_absmax == pytest.approx(float(flat.abs().max()))
    assert stats.act_token_absmax == pytest.approx(float(flat.abs().amax(-1).mean()))
    assert stats.act_p999 == pytest.approx(float(torch.quantile(flat.abs().reshape(-1), 0.999)))
    sqnr = 10 * math.log10(float((flat ** 2).sum() / ((flat - x_q) ** 2).sum()))
    assert stats.act_sqnr_db == pytest.approx(sqnr, rel=1e-4)
    assert stats.weight_rel_error == pytest.approx(float((w - w_q).norm() / w.norm()), rel=1e-5)
    assert stats.weight_zero_frac == pytest.approx(float((trits == 0).float().mean()))
    y = flat @ w.T
    assert stats.out_rel_error == pytest.approx(float((y - x_q @ w_q.T).norm() / y.norm()), rel=1e-4)


def test_more_activation_bits_mean_less_noise():
    net = nn.Sequential(nn.Linear(32, 8))
    x = torch.randn(4, 32, generator=torch.Generator().manual_seed(1))
    four = calibrate(net, [x], keep=(), act_bits=4)["0"]
    eight = calibrate(net, [x], keep=(), act_bits=8)["0"]
    assert eight.act_sqnr_db > four.act_sqnr_db + 18  # ~6 dB per bit
    assert eight.out_rel_error < four.out_rel_error


def test_cognate_calibration_covers_the_layers_to_convert_and_changes_nothing():
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    stats = calibrate(model, [IDS[:2], IDS[2:]])
    assert model.training  # restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_pre_hooks for m in model.modules())  # hooks removed
    converted = convert_to_ternary(small_model())
    assert list(stats) == converted
    for name, s in stats.items():
        assert s.calls >= 2, name  # each layer ran on both batches (more with recursion)
        assert 25 < s.act_sqnr_db < 60 and 0 < s.out_rel_error < 1.5, name
        assert 0 < s.weight_zero_frac < 1 and 0 < s.act_p999 <= s.act_absmax, name
    summary = summarise(stats)
    assert summary["calib/layers"] == len(converted)
    assert summary["calib/out_rel_error_max"] == max(s.out_rel_error for s in stats.values())


def test_nothing_to_calibrate_is_refused():
    with pytest.raises(ValueError, match="got no batch of calibration text"):
        calibrate(small_model(), [])
    with pytest.raises(ValueError, match="no nn.Linear layer outside `keep`"):
        calibrate(nn.Sequential(nn.Linear(4, 4)), [torch.randn(1, 4)], keep=("0",))
