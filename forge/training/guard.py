"""Divergence guard: stop training on a NaN/inf loss or a loss far above its running minimum."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


class DivergenceError(RuntimeError):
    """Training diverged; the message names the model, the step and the loss."""

    def __init__(self, model: str, step: int, loss: float, reason: str):
        super().__init__(f"model {model} diverged at step {step}: loss {loss:.4g} ({reason})")
        self.model, self.step, self.loss, self.reason = model, step, loss, reason

    def __reduce__(self):
        return DivergenceError, (self.model, self.step, self.loss, self.reason)


@dataclass
class DivergenceGuard:
    """Watches the smoothed loss; `factor` times its running minimum counts as divergence.

    The loss is smoothed with an EMA (weight `smoothing`) so one noisy batch does not trip it;
    the first `grace_steps` only set the baseline.
    """

    model: str
    factor: float = 3.0
    grace_steps: int = 10
    smoothing: float = 0.9
    ema: float | None = None
    best: float = field(default=math.inf)
    seen: int = 0

    def update(self, step: int, loss: float) -> None:
        if not math.isfinite(loss):
            raise DivergenceError(self.model, step, loss, "not finite")
        self.ema = loss if self.ema is None else self.smoothing * self.ema + (1 - self.smoothing) * loss
        self.seen += 1
        if self.seen <= self.grace_steps:
            self.best = min(self.best, self.ema)
            return
        if self.ema > self.factor * self.best:
            raise DivergenceError(self.model, step, loss,
                                  f"smoothed {self.ema:.4g} > {self.factor} x running min {self.best:.4g}")
        self.best = min(self.best, self.ema)

    def state_dict(self) -> dict:
        return {"ema": self.ema, "best": self.best, "seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        self.ema, self.best, self.seen = state["ema"], state["best"], state["seen"]
