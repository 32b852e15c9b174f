"""A training loop with exact resume: batches are a pure function of the step, and a checkpoint
holds weights, optimizer, guard and RNG state, so train k + resume + k == train 2k on CPU."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psutil
import torch

from forge.training.checkpoint import latest_checkpoint, load_state, save_checkpoint
from forge.training.guard import DivergenceError, DivergenceGuard
from forge.training.schedule import warmup_cosine

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class LoopSettings:
    """How long and how carefully to train one model."""

    steps: int
    warmup: int = 10
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    log_every: int = 10
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    divergence_factor: float = 3.0
    divergence_grace: int = 10
    max_recoveries: int = 0  # >0: on divergence reload the last checkpoint with a lower lr
    lr_backoff: float = 0.5


@dataclass
class LoopOutcome:
    steps_done: int
    resumed_from: int
    final_loss: float
    recoveries: int
    tokens_per_s: float


def scale_lr(optimizer: Any, scale: float) -> None:
    """Set every param group's lr to its base lr (remembered on first call) times `scale`."""
    for group in param_groups(optimizer):
        group.setdefault("base_lr", group["lr"])
        group["lr"] = group["base_lr"] * scale


def param_groups(optimizer: Any) -> list[dict]:
    inner = getattr(optimizer, "optimizers", None)
    if inner:
        return [g for opt in inner for g in opt.param_groups]
    return list(optimizer.param_groups)


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (fp16 where bf16 is missing); full precision on the CPU."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return psutil.Process().memory_info().rss / 2**20


def optimizer_step(model: Any, optimizer: Any, batch: Batch,
                   hooks: tuple[Callable[[], None], Callable[[], None]] = (lambda: None,
                                                                          lambda: None),
                   grad_clip: float = 1.0) -> float:
    """One plain training step on `batch` (probes and benchmarks; `Trainer` adds schedules,
    checkpoints and guards): loss, backward, hooks[0] on raw gradients (e.g. Grokfast), clip,
    optimizer step, hooks[1] (e.g. QK-clip). Returns the loss."""
    model.train()
    loss = model(**batch).loss
    optimizer.zero_grad()
    loss.backward()
    hooks[0]()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    hooks[1]()
    return float(loss.detach())


class Trainer:
    """Trains `model` with `optimizer` on `batch_for_step(step)`; checkpoints under `ckpt_root`."""

    def __init__(self, name: str, model: Any, optimizer: Any, batch_for_step: Callable[[int], Batch],
                 settings: LoopSettings, ckpt_root: str | Path, fingerprint: str,
                 device: torch.device, log: Callable[[int, dict], None],
                 progress: Callable[[int, int], None] = lambda done, total: None,
                 before_step: Callable[[], None] = lambda: None,
                 after_step: Callable[[], None] = lambda: None,
                 on_checkpoint: Callable[[], None] = lambda: None):
        self.name, self.model, self.optimizer = name, model, optimizer
        self.batch_for_step, self.settings = batch_for_step, settings
        self.ckpt_root, self.fingerprint, self.device = Path(ckpt_root), fingerprint, device
        self.log, self.progress = log, progress
        self.before_step, self.after_step = before_step, after_step
        self.on_checkpoint = on_checkpoint  # e.g. push the checkpoints to the run storage
        self.guard = DivergenceGuard(name, settings.divergence_factor, settings.divergence_grace)
        self.step, self.lr_scale, self.recoveries = 0, 1.0, 0
        self.scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda"
                                           and not torch.cuda.is_bf16_supported())

    def state_dict(self) -> dict:
        return {"step": self.step, "optimizer": self.optimizer.state_dict(),
                "guard": self.guard.state_dict(), "rng": torch.get_rng_state(),
                "lr_scale": self.lr_scale, "recoveries": self.recoveries,
                "fingerprint": self.fingerprint}

    def restore(self) -> int:
        """Load the newest checkpoint with our fingerprint; returns the step it resumes from."""
        path = latest_checkpoint(self.ckpt_root, self.fingerprint)
        if path is None:
            return 0
        weights = type(self.model).from_pretrained(path).state_dict()
        self.model.load_state_dict(weights)
        state = load_state(path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.guard.load_state_dict(state["guard"])
        torch.set_rng_state(state["rng"])
        self.step, self.lr_scale = state["step"], state["lr_scale"]
        self.recoveries = state["recoveries"]
        return self.step

    def train_step(self) -> dict[str, float]:
        batch = {k: v.to(self.device) for k, v in self.batch_for_step(self.step).items()}
        scale_lr(self.optimizer, self.lr_scale * warmup_cosine(
            self.step, self.settings.steps, self.settings.warmup, self.settings.min_lr_ratio))
        self.model.train()
        with autocast_for(self.device):
            out = self.model(**batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(out.loss).backward()
        if self.scaler.is_enabled():
            for opt in getattr(self.optimizer, "optimizers", None) or [self.optimizer]:
                self.scaler.unscale_(opt)
        self.before_step()  # e.g. the Grokfast filter: it sees raw gradients, before clipping
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.scaler.step(self.optimizer) if self.scaler.is_enabled() else self.optimizer.step()
        self.scaler.update()
        self.after_step()
        self.step += 1
        metrics = {"loss": float(out.loss.detach()), "grad_norm": float(grad_norm),
                   "lr": param_groups(self.optimizer)[0]["lr"],
                   "tokens": float(batch["input_ids"].numel())}
        for key in ("lm_loss", "act_loss", "act_mean_steps", "gate_entropy"):
            value = getattr(out, key, None)
            if value is not None:
                metrics[key] = float(value.detach()) if torch.is_tensor(value) else float(value)
        return metrics

    def run(self) -> LoopOutcome:
        start_step = self.restore()
        tokens, started, loss = 0.0, time.perf_counter(), float("nan")
        while self.step < self.settings.steps:
            metrics = self.train_step()
            loss, tokens = metrics["loss"], tokens + metrics.pop("tokens")
            try:
                self.guard.update(self.step, loss)
            except DivergenceError:
                if self.recoveries >= self.settings.max_recoveries or not self._recover():
                    raise
                continue
            if self.step % self.settings.log_every == 0 or self.step == self.settings.steps:
                rate = tokens / max(1e-9, time.perf_counter() - started)
                self.log(self.step, {**metrics, "tokens_per_s": rate,
                                     "memory_mb": memory_mb(self.device)})
                self.progress(self.step, self.settings.steps)
            if self.step % self.settings.checkpoint_every == 0 or self.step == self.settings.steps:
                save_checkpoint(self.ckpt_root, self.step, self.model, self.state_dict(),
                                self.settings.keep_checkpoints)
                self.on_checkpoint()
        rate = tokens / max(1e-9, time.perf_counter() - started)
        return LoopOutcome(self.step, start_step, loss, self.recoveries, rate)

    def _recover(self) -> bool:
        """Reload the last checkpoint and lower the learning rate; False when there is none."""
        recoveries, scale = self.recoveries + 1, self.lr_scale * self.settings.lr_backoff
        if latest_checkpoint(self.ckpt_root, self.fingerprint) is None:
            return False
        self.restore()
        self.recoveries, self.lr_scale = recoveries, scale
        self.guard = DivergenceGuard(self.name, self.settings.divergence_factor,
                                     self.settings.divergence_grace)
        return True
