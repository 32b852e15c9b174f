"""Reward sign and mixing head: a thought that carries the answer is rewarded and gets used."""
from __future__ import annotations

import torch

from forge.reasoning.losses import (ahead_targets, base_nll_ahead, reinforce_advantage,
                                    reinforce_loss, thought_rewards, token_nll)
from forge.reasoning.mixing import mixed_predictions
from forge.reasoning.thoughts import ThoughtPass, run_thoughts
from tests.reasoning.conftest import thinking_model


def pointing_at(model, tokens: torch.Tensor, logit: float = 30.0) -> torch.Tensor:
    """States (..., C) along the lm_head rows of `tokens` (...), with that token's logit = 30."""
    rows = model.lm_head.weight[tokens]  # (..., C)
    return logit * rows / rows.pow(2).sum(-1, keepdim=True)


def constructed_pass(model, ids: torch.Tensor, thought_tokens: torch.Tensor) -> ThoughtPass:
    """The real pass over `ids`, with the post-thought states replaced by ones that predict
    `thought_tokens` (B, T, A): a thought that carries exactly that continuation."""
    with torch.no_grad():
        tp = run_thoughts(model, ids, torch.randint(8, 97, (*ids.shape, 3)), n_ahead=2)
    return ThoughtPass(tp.thoughts, tp.logp, tp.h_base,
                       pointing_at(model, thought_tokens).detach(), tp.at)


def rewards_for(model, ids: torch.Tensor, tp: ThoughtPass) -> torch.Tensor:
    targets = ahead_targets(ids, 2)
    base_logits, mixed_logits, _ = mixed_predictions(model, tp)
    return thought_rewards(base_nll_ahead(base_logits, targets), token_nll(mixed_logits, targets))


def test_reward_sign_follows_whether_the_thought_carries_the_answer() -> None:
    model = thinking_model()
    ids = torch.randint(8, 97, (1, 10))
    truth = ahead_targets(ids, 2).clamp_min(8)  # (1, T, 2): the true next two tokens
    wrong = (truth + 7 - 8) % 89 + 8  # other real tokens
    with torch.no_grad():
        good = rewards_for(model, ids, constructed_pass(model, ids, truth))[:, :-2]
        bad = rewards_for(model, ids, constructed_pass(model, ids, wrong))[:, :-2]
    assert (good > 0.1).all(), good
    assert (bad < -0.1).all(), bad
    # K = 2 thoughts per position (the good one, the bad one): the baseline is their mean
    adv = reinforce_advantage(torch.cat([good, bad]), n_thoughts=2)
    assert (adv[0] > 0).all() and (adv[1] < 0).all()
    torch.testing.assert_close(adv[0], -adv[1])
    # REINFORCE raises the log-probability of the thought that helped, lowers the other
    logp = torch.zeros(2, good.shape[1], requires_grad=True)
    reinforce_loss(adv, logp, torch.ones_like(adv)).backward()
    assert (logp.grad[0] < 0).all() and (logp.grad[1] > 0).all()  # descent: logp0 up, logp1 down


def test_reward_is_zero_when_the_thought_changes_nothing() -> None:
    model = thinking_model(1)
    ids = torch.randint(8, 97, (2, 9))
    with torch.no_grad():
        tp = run_thoughts(model, ids, torch.randint(8, 97, (2, 9, 3)), n_ahead=2)
        shifted = torch.nn.functional.pad(tp.h_base[:, 1:], (0, 0, 0, 1))
        same = ThoughtPass(tp.thoughts, tp.logp, tp.h_base,
                           torch.stack([tp.h_base, shifted], dim=2), tp.at)
        r = rewards_for(model, ids, same)
    torch.testing.assert_close(r, torch.zeros_like(r), rtol=0, atol=1e-5)


def train_mixer(model, ids: torch.Tensor, thought_tokens: torch.Tensor, steps: int = 60) -> list:
    """Fit only the mixing head on the mixed next-token loss; return w's mean per step."""
    tp = constructed_pass(model, ids, thought_tokens)
    opt = torch.optim.Adam(model.thoughts.parameters(), lr=0.05)
    targets = ahead_targets(ids, 2)
    history = []
    for _ in range(steps):
        _, mixed_logits, w = mixed_predictions(model, tp)
        loss = token_nll(mixed_logits, targets).sum() / (targets >= 0).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(w.mean().item())
    return history


def test_mixing_weight_moves_towards_the_thought_when_it_helps() -> None:
    model = thinking_model(2)
    ids = torch.randint(8, 97, (2, 12))
    truth = ahead_targets(ids, 2).clamp_min(8)
    w = train_mixer(model, ids, truth)
    assert abs(w[0] - 0.2) < 1e-3  # the configured starting weight
    assert w[-1] > 0.8, w[-1]


def test_mixing_weight_moves_away_from_a_thought_that_misleads() -> None:
    model = thinking_model(2)
    ids = torch.randint(8, 97, (2, 12))
    wrong = (ahead_targets(ids, 2).clamp_min(8) + 11 - 8) % 89 + 8
    w = train_mixer(model, ids, wrong)
    assert w[-1] < 0.05, w[-1]
