"""Lean ternary inference layers: the same logits as forge.quant's frozen TernaryLinear."""
from __future__ import annotations

import torch

from forge import load_model
from forge.quant import TernaryLinear, quantize_activations
from forge.serve.fast import LeanTernaryLinear, absmax_dequantised, lean_ternary

IDS = torch.tensor([[11, 40, 99, 7, 260, 31, 150, 12, 13, 14, 90]])


def test_lean_layers_give_bit_equal_logits(tiny_run):
    ref, lean = load_model(tiny_run / "bitnet/ternary"), load_model(tiny_run / "bitnet/ternary")
    swapped = lean_ternary(lean)
    assert swapped == sum(isinstance(m, TernaryLinear) for m in ref.modules()) > 0
    assert not any(isinstance(m, TernaryLinear) for m in lean.modules())
    assert sum(isinstance(m, LeanTernaryLinear) for m in lean.modules()) == swapped
    with torch.no_grad():
        assert torch.equal(lean(IDS).logits, ref(IDS).logits)
        assert torch.equal(lean(IDS[:, :5]).logits, ref(IDS[:, :5]).logits)  # no stale input


def test_fp_model_is_left_alone(tiny_run):
    assert lean_ternary(load_model(tiny_run / "cognate/fp")) == 0


def test_absmax_matches_forge_quantiser_bit_for_bit():
    gen = torch.Generator().manual_seed(0)
    for scale in (1e-8, 1e-3, 1.0, 1e5):
        x = torch.randn(9, 64, generator=gen) * scale
        x[0] = 0.0  # an all-zero token takes the eps branch
        codes, s = quantize_activations(x, 8)
        assert torch.equal(absmax_dequantised(x, 8), codes * s)
        codes4, s4 = quantize_activations(x, 4)
        assert torch.equal(absmax_dequantised(x, 4), codes4 * s4)
