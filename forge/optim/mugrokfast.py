"""MuGrokfast: torch.optim.Muon + torch.optim.AdamW, a Grokfast filter and QK-clip.

One training step (the order matters; `forge.training.Trainer` takes the two hooks):

    loss.backward()
    opt.filter_gradients()   # Grokfast EMA on raw gradients (arXiv 2405.20233)
    clip_grad_norm_(...)     # optional, the loop's business
    opt.step()               # Muon for hidden matrices, AdamW for the rest
    opt.qk_clip()            # MuonClip per-head rescale of W_q, W_k (Kimi K2, arXiv 2507.20534)
    opt.zero_grad()

Muon is used with `adjust_lr_fn="match_rms_adamw"` (Liu et al., "Muon is Scalable for LLM
Training", arXiv 2502.16982): its update RMS matches AdamW's, so one learning rate serves both.
`state_dict()` holds both optimizers, the Grokfast buffers and the step count: saving and loading
it resumes bit for bit.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from forge.config.optim import MuGrokfastConfig
from forge.optim.grokfast import GrokfastEMA
from forge.optim.qk_clip import qk_clip_
from forge.optim.routing import ParamRouting, route_parameters


class MuGrokfast:
    """Routes parameters to Muon / AdamW and adds Grokfast filtering and QK-clip."""

    def __init__(self, model: nn.Module, config: MuGrokfastConfig) -> None:
        self.model, self.config = model, config
        self.routing: ParamRouting = route_parameters(model)
        self.optimizers: list[torch.optim.Optimizer] = []
        if self.routing.muon:
            self.optimizers.append(torch.optim.Muon(
                [p for _, p in self.routing.muon], lr=config.lr, weight_decay=config.weight_decay,
                momentum=config.muon_momentum, adjust_lr_fn="match_rms_adamw"))
        adamw_groups = [{"params": [p for _, p in self.routing.adamw_decay],
                         "weight_decay": config.weight_decay},
                        {"params": [p for _, p in self.routing.adamw_no_decay],
                         "weight_decay": 0.0}]
        adamw_groups = [g for g in adamw_groups if g["params"]]
        if adamw_groups:
            self.optimizers.append(torch.optim.AdamW(adamw_groups, lr=config.lr,
                                                     betas=tuple(config.adamw_betas)))
        trainable = [(n, p) for group in self.routing.groups().values() for n, p in group]
        self.grokfast = GrokfastEMA(trainable, config.grokfast_alpha, config.grokfast_lambda)
        self.steps = 0
        self.last_clipped: dict[str, int] = {}

    @property
    def param_groups(self) -> list[dict]:
        """All param groups of the inner optimizers (set `lr` here to schedule)."""
        return [g for opt in self.optimizers for g in opt.param_groups]

    def filter_gradients(self) -> None:
        """Grokfast EMA: mu <- alpha mu + (1-alpha) g; g <- g + lambda mu, on every `.grad`."""
        self.grokfast.apply()

    def step(self) -> None:
        """One Muon step and one AdamW step on the current (filtered) gradients."""
        for opt in self.optimizers:
            opt.step()
        self.steps += 1

    def qk_clip(self) -> dict[str, int]:
        """Rescale W_q, W_k of heads whose max logit since the last call exceeded tau."""
        tau = self.config.qk_clip_tau
        self.last_clipped = {} if tau is None else qk_clip_(self.model, tau)
        return self.last_clipped

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every routed parameter."""
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def hooks(self) -> tuple[Callable[[], None], Callable[[], None]]:
        """(before_step, after_step) for `forge.training.Trainer`: the filter and QK-clip."""
        return self.filter_gradients, self._after_step

    def _after_step(self) -> None:
        self.qk_clip()

    def state_dict(self) -> dict:
        """Inner optimizer states, Grokfast buffers and the step count."""
        return {"optimizers": [opt.state_dict() for opt in self.optimizers],
                "grokfast": self.grokfast.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()` taken from a MuGrokfast over the same model layout."""
        if len(state["optimizers"]) != len(self.optimizers):
            raise ValueError(f"MuGrokfast state has {len(state['optimizers'])} optimizers, "
                             f"this one {len(self.optimizers)}: different model layout")
        for opt, opt_state in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(opt_state)
        self.grokfast.load_state_dict(state["grokfast"])
        self.steps = state["steps"]


def build_optimizer(model: nn.Module, config: MuGrokfastConfig) -> MuGrokfast:
    """MuGrokfast over `model`'s trainable parameters, e.g. `build_optimizer(m, cfg.optim.cognate)`."""
    return MuGrokfast(model, config)
