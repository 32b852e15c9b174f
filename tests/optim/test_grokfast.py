"""Grokfast filter equals the formula computed by hand."""
from __future__ import annotations

import torch
from torch import nn

from forge.optim import GrokfastEMA


def test_filter_matches_hand_formula_over_steps() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(5, 3)
    alpha, lamb = 0.9, 2.0
    ema = GrokfastEMA(layer.named_parameters(), alpha, lamb)
    mu = None
    for _ in range(4):
        raw = {n: torch.randn_like(p) for n, p in layer.named_parameters()}
        for n, p in layer.named_parameters():
            p.grad = raw[n].clone()
        ema.apply()
        # by hand: mu starts at the first gradient, then mu <- a mu + (1-a) g, g <- g + l mu
        mu = {n: g.clone() for n, g in raw.items()} if mu is None else mu
        mu = {n: alpha * mu[n] + (1 - alpha) * raw[n] for n in raw}
        for n, p in layer.named_parameters():
            torch.testing.assert_close(p.grad, raw[n] + lamb * mu[n], rtol=1e-6, atol=1e-7)


def test_first_step_amplifies_by_one_plus_lambda_and_zero_lambda_is_identity() -> None:
    p = nn.Parameter(torch.ones(3))
    p.grad = torch.tensor([1.0, -2.0, 3.0])
    GrokfastEMA([("p", p)], 0.98, 0.5).apply()
    assert p.grad.tolist() == [1.5, -3.0, 4.5]
    p.grad = torch.tensor([1.0, -2.0, 3.0])
    off = GrokfastEMA([("p", p)], 0.98, 0.0)
    off.apply()
    assert p.grad.tolist() == [1.0, -2.0, 3.0] and off.mu == {}


def test_state_dict_round_trip() -> None:
    p = nn.Parameter(torch.zeros(2))
    a = GrokfastEMA([("p", p)], 0.9, 1.0)
    p.grad = torch.tensor([1.0, 2.0])
    a.apply()
    b = GrokfastEMA([("p", p)], 0.5, 0.0)
    b.load_state_dict(a.state_dict())
    assert (b.alpha, b.lamb) == (0.9, 1.0) and torch.equal(b.mu["p"], a.mu["p"])
