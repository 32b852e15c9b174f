"""Quiet-STaR objective: REINFORCE on the thoughts plus language-model losses (arXiv 2403.09629).

For position t, thought i of K and the next A true tokens (section 4.4, eq. 4-6):

    nll_base(t)    = -sum_k log p_base(x_{t+1+k} | x_<=t+k)           no thought
    nll_mixed(t,i) = -sum_k log p_mixed(x_{t+1+k} | x_<=t, thought_i, x_t+1..t+k)
    r(t, i)        = nll_base(t) - nll_mixed(t, i)                     > 0: the thought helped
    adv(t, i)      = r(t, i) - mean_i' r(t, i')                        baseline over the K thoughts
    L_reinforce    = -mean_t,i adv(t, i) * log p(thought_i | x_<=t)    (adv detached)

    loss = CE(base) + CE(mixed) + reinforce_weight * L_reinforce + kl_weight * KL(p_ref || p_base)

KL keeps the base predictions at every position near the frozen input model (DESIGN.md
section 9, kl 0.1).
Positions with no target (label -100 ahead) carry no reward and no loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from forge.models import CognateForCausalLM
from forge.models.act import IGNORE_INDEX
from forge.reasoning.mixing import mixed_predictions
from forge.reasoning.thoughts import run_thoughts, sample_thoughts


def ahead_targets(labels: torch.Tensor, n_ahead: int) -> torch.Tensor:
    """(B, T, A) targets: [t, k] = labels[t + 1 + k], -100 past the end."""
    shifted = [F.pad(labels[:, 1 + k:], (0, 1 + k), value=IGNORE_INDEX) for k in range(n_ahead)]
    return torch.stack(shifted, dim=2)


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token NLL (...) of logits (..., V) at targets (...); 0 where the target is -100."""
    valid = targets != IGNORE_INDEX
    nll = F.cross_entropy(logits.flatten(0, -2), targets.clamp_min(0).flatten(),
                          reduction="none").view(targets.shape)
    return nll * valid


def base_nll_ahead(base_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, T, A): [t, k] = NLL of the base prediction at t + k of x_{t+1+k} (no thought)."""
    nll = token_nll(base_logits, targets[:, :, 0])  # (B, T)
    return torch.stack([F.pad(nll[:, k:], (0, k)) for k in range(targets.shape[2])], dim=2)


def thought_rewards(nll_base: torch.Tensor, nll_mixed: torch.Tensor) -> torch.Tensor:
    """r (B, T) = sum_k nll_base - nll_mixed over the A scored tokens; inputs (B, T, A)."""
    return (nll_base - nll_mixed).sum(-1)


def reinforce_advantage(rewards: torch.Tensor, n_thoughts: int) -> torch.Tensor:
    """rewards (K*B, T) (K copies of a batch, stacked) minus their mean over the K thoughts."""
    r = rewards.view(n_thoughts, -1, rewards.shape[-1])  # (K, B, T)
    return (r - r.mean(0, keepdim=True)).view_as(rewards)


def reinforce_loss(advantage: torch.Tensor, logp: torch.Tensor,
                   valid: torch.Tensor) -> torch.Tensor:
    """-mean over valid positions of adv.detach() * log p(thought); all (B, T)."""
    n = valid.sum().clamp_min(1)
    return -(advantage.detach() * logp * valid).sum() / n


def masked_mean(values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of `values` where targets != -100 (values already 0 elsewhere)."""
    return values.sum() / (targets != IGNORE_INDEX).sum().clamp_min(1)


def kl_to_reference(logits: torch.Tensor, ref_logits: torch.Tensor,
                    valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid positions of KL(p_ref || p) from logits (B, T, V)."""
    kl = F.kl_div(torch.log_softmax(logits, -1), torch.log_softmax(ref_logits, -1),
                  log_target=True, reduction="none").sum(-1)  # (B, T)
    return (kl * valid).sum() / valid.sum().clamp_min(1)


@dataclass(frozen=True)
class LossSettings:
    """The knobs of `quiet_star_loss` (phase config `phases.quiet_star`)."""

    thought_len: int = 4
    n_thoughts: int = 2
    n_ahead: int = 2
    temperature: float = 1.0
    reinforce_weight: float = 1.0
    kl_weight: float = 0.0


def scored_positions(targets: torch.Tensor) -> tuple[int, ...] | None:
    """Positions t where some row scores a token x_{t+1..t+A}: targets (B, T, A). None if none."""
    hit = (targets != IGNORE_INDEX).any(-1).any(0)  # (T,)
    at = tuple(hit.nonzero().flatten().tolist())
    return at or None


def quiet_star_loss(model: CognateForCausalLM, ids: torch.Tensor, labels: torch.Tensor,
                    s: LossSettings, reference: CognateForCausalLM | None = None,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """The Phase 3 training loss of one batch (B, T) and its parts as floats (module docstring).

    Thoughts are drawn only at positions where some row has a token to score (for task
    examples: the answer), `n_thoughts` per position, the batch repeated K times.
    """
    ids_k, labels_k = ids.repeat(s.n_thoughts, 1), labels.repeat(s.n_thoughts, 1)  # (K*B, T)
    targets = ahead_targets(labels_k, s.n_ahead)  # (K*B, T, A)
    at = scored_positions(targets)
    thoughts = sample_thoughts(model, ids_k, s.thought_len, s.temperature, generator, at)
    tp = run_thoughts(model, ids_k, thoughts, s.n_ahead, s.temperature, at)
    base_logits, mixed_logits, w = mixed_predictions(model, tp)
    scored = targets[:, tp.at]  # (K*B, P, A)
    base_ahead = base_nll_ahead(base_logits, targets)[:, tp.at]  # (K*B, P, A)
    nll_mixed = token_nll(mixed_logits, scored)  # (K*B, P, A)
    valid = (scored != IGNORE_INDEX).any(-1).float()  # (K*B, P)
    rewards = thought_rewards(base_ahead, nll_mixed).detach()  # (K*B, P)
    adv = reinforce_advantage(rewards, s.n_thoughts)
    lm_base = masked_mean(token_nll(base_logits, targets[:, :, 0]), targets[:, :, 0])
    lm_mixed = masked_mean(nll_mixed, scored)
    rl = reinforce_loss(adv, tp.logp, valid)
    loss = lm_base + lm_mixed + s.reinforce_weight * rl
    n_valid = valid.sum().clamp_min(1)
    parts = {"loss/base": lm_base.item(), "loss/mixed": lm_mixed.item(),
             "loss/reinforce": rl.item(),
             "mix/w_mean": ((w.mean(-1) * valid).sum() / n_valid).item(),
             "reward/mean": ((rewards * valid).sum() / n_valid).item(),
             "thought/positions": float(tp.at.numel())}
    if reference is not None and s.kl_weight > 0:
        with torch.no_grad():
            ref_logits = reference(ids).logits.float()  # (B, T, V)
        B = ids.shape[0]
        kl = kl_to_reference(base_logits[:B], ref_logits, torch.ones_like(ref_logits[..., 0]))
        loss = loss + s.kl_weight * kl
        parts["loss/kl"] = kl.item()
    parts["loss/total"] = loss.item()
    return loss, parts
