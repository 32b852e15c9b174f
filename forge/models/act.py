"""Adaptive computation for a causal LM: a per-position Q-head halting rule.

Following TRM's ACT (arXiv 2510.04871, section 4; Graves arXiv 1603.08983 for ACT itself), a
linear Q-head reads the answer state y_t and predicts q_t = logit P(prediction at t is already
right). It is trained with BCE against the indicator [argmax logits_t == label_t], its bias
initialised to -5 (sigmoid(-5) ~ 0.007: "not done" until it learns otherwise).

Causality (DESIGN.md section 5): halting is per position, from that position's own state. At
inference every step runs to the limit; each position keeps the output of the first step whose
sigmoid(q_t) > threshold (else the last step). The sequence as a whole never stops early.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

IGNORE_INDEX = -100


class HaltingHead(nn.Module):
    """q_t = w . y_t + b with w = 0, b = -5 at init (TRM's Q-head init)."""

    BIAS_INIT = -5.0

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.q_weight = nn.Parameter(torch.zeros(d_model))
        self.q_bias = nn.Parameter(torch.full((), self.BIAS_INIT))

    def reset_halting_parameters(self) -> None:
        """Zero weight, bias -5."""
        init.zeros_(self.q_weight)
        init.constant_(self.q_bias, self.BIAS_INIT)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> halting logits (B, T)."""
        return y @ self.q_weight + self.q_bias


def shift_labels(labels: torch.Tensor) -> torch.Tensor:
    """Labels aligned with logits: position t predicts labels[t+1]; the last gets -100. (B, T)."""
    return F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)


def act_bce(q: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE(q_t, [argmax logits_t == target_t]) averaged over positions with a target.

    q (B, T); logits (B, T, V); targets (B, T) already shifted, -100 = ignore.
    """
    valid = targets != IGNORE_INDEX  # (B, T)
    if not valid.any():
        return q.sum() * 0.0
    correct = (logits.detach().argmax(-1) == targets).to(q.dtype)  # (B, T)
    return F.binary_cross_entropy_with_logits(q[valid], correct[valid])


def halting_steps(q_steps: torch.Tensor, threshold: float) -> torch.Tensor:
    """Per-position halting step: first s with sigmoid(q) > threshold, else the last. (B, T) long.

    q_steps (S, B, T) holds each step's halting logits.
    """
    S = q_steps.shape[0]
    halt = torch.sigmoid(q_steps) > threshold  # (S, B, T)
    halt[-1] = True  # the step limit always halts
    return halt.to(torch.int8).argmax(dim=0)  # first True along S


def select_steps(states: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Pick, per position, the state of its own halting step. states (S, B, T, C), steps (B, T)."""
    index = steps[None, :, :, None].expand(1, *states.shape[1:])  # (1, B, T, C)
    return states.gather(0, index).squeeze(0)  # (B, T, C)
