"""Grokfast EMA gradient filter (Lee et al., arXiv 2405.20233, "Grokfast-EMA", Algorithm 2).

Applied between `backward()` and the optimizer step, per parameter:

    mu <- alpha * mu + (1 - alpha) * g        (slow component of the gradient)
    g  <- g + lambda * mu                     (amplify it)

mu starts at the first gradient seen (as in the authors' reference code), so the first filtered
gradient is (1 + lambda) g. lambda = 0 turns the filter off and keeps no state.
"""
from __future__ import annotations

from typing import Iterable

import torch


@torch.no_grad()
def grokfast_ema_(grad: torch.Tensor, mu: torch.Tensor, alpha: float, lamb: float) -> None:
    """One filter step in place: mu <- alpha mu + (1 - alpha) grad; grad <- grad + lamb mu."""
    mu.mul_(alpha).add_(grad, alpha=1.0 - alpha)
    grad.add_(mu, alpha=lamb)


class GrokfastEMA:
    """Holds mu for every named parameter and filters their `.grad` in place."""

    def __init__(self, named_params: Iterable[tuple[str, torch.nn.Parameter]], alpha: float,
                 lamb: float) -> None:
        self.params = dict(named_params)
        self.alpha, self.lamb = alpha, lamb
        self.mu: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def apply(self) -> None:
        """Filter the current gradients (parameters without a gradient are skipped)."""
        if self.lamb == 0.0:
            return
        for name, p in self.params.items():
            if p.grad is None:
                continue
            if name not in self.mu:
                self.mu[name] = p.grad.detach().clone()
            grokfast_ema_(p.grad, self.mu[name], self.alpha, self.lamb)

    def state_dict(self) -> dict:
        """mu buffers by parameter name (cloned), plus alpha and lambda."""
        return {"alpha": self.alpha, "lamb": self.lamb,
                "mu": {k: v.clone() for k, v in self.mu.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore mu; names must match this model's parameters."""
        unknown = set(state["mu"]) - set(self.params)
        if unknown:
            raise KeyError(f"Grokfast state has unknown parameters: {sorted(unknown)[:5]}")
        self.alpha, self.lamb = state["alpha"], state["lamb"]
        self.mu = {k: v.clone().to(self.params[k].device) for k, v in state["mu"].items()}
