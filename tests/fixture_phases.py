"""Three small but real phases for engine tests: build a tiny GPT-2, train it, shrink it.

They exercise everything the engine offers a phase (contracts, artifacts, metrics, progress,
gates, failures) in seconds, without depending on the real Agent Forge phases.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from forge.config import GatedPhaseConfig, PhaseConfig, option
from forge.pipeline import (BasePhase, HandoffContract, PhaseContext, PhaseOutput, PhaseResult,
                            register_phase, save_artifact)
from forge.pipeline.registry import unregister_phase

VOCAB, SEQ = 64, 16


@dataclass(frozen=True)
class InitConfig(PhaseConfig):
    width: int = option(16, "Embedding size of the tiny model.", ge=8)


@dataclass(frozen=True)
class TrainConfig(PhaseConfig):
    steps: int = option(20, "Optimiser steps.", ge=1)
    lr: float = option(3e-3, "Learning rate.", gt=0)
    fail_at_step: int = option(-1, "Raise at this step (tests failures); -1 never.")


@dataclass(frozen=True)
class ShrinkConfig(GatedPhaseConfig):
    scale: float = option(0.5, "Factor applied to every weight.", gt=0)


def batch(seed: int = 0) -> torch.Tensor:
    """A fixed, learnable token stream: each row counts upwards from a random start."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(0, VOCAB, (8, 1), generator=g)
    return (start + torch.arange(SEQ)) % VOCAB  # (B, T)


def loss_of(model, tokens: torch.Tensor) -> float:
    with torch.no_grad():
        return float(model(tokens, labels=tokens).loss)


@register_phase
class InitPhase(BasePhase):
    name = "fixture_init"
    config_class = InitConfig
    output_contract = HandoffContract(1, 1, min_params=100, required_metadata=("vocab",))

    def run(self, inputs, ctx: PhaseContext) -> PhaseResult:
        torch.manual_seed(ctx.config.run.seed)
        cfg = GPT2Config(n_layer=1, n_embd=ctx.settings.width, n_head=2, vocab_size=VOCAB,
                         n_positions=SEQ)
        model = GPT2LMHeadModel(cfg)
        loss = loss_of(model, batch())
        ctx.log_metrics(0, {"loss": loss})
        save_artifact(model, ctx.artifact_dir("seed"), metrics={"loss": loss},
                      metadata={"vocab": VOCAB})
        return PhaseResult([PhaseOutput("seed", [])], key_metric=("loss", loss))


@register_phase
class TrainPhase(BasePhase):
    name = "fixture_train"
    config_class = TrainConfig
    input_contract = HandoffContract(1, 1, required_metadata=("vocab",))
    output_contract = HandoffContract(1, 1, required_metadata=("vocab",))

    def run(self, inputs, ctx: PhaseContext) -> PhaseResult:
        torch.manual_seed(ctx.config.run.seed)
        model = AutoModelForCausalLM.from_pretrained(inputs[0].path)
        opt = torch.optim.AdamW(model.parameters(), lr=ctx.settings.lr)
        tokens = batch()
        steps = ctx.settings.steps
        for step in range(1, steps + 1):
            if step == ctx.settings.fail_at_step:
                raise RuntimeError(f"planned failure at step {step}")
            loss = model(tokens, labels=tokens).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            ctx.log_metrics(step, {"loss": float(loss)}, model="trained")
            ctx.progress(step, steps, f"loss={float(loss):.3f}")
        final = loss_of(model, tokens)
        save_artifact(model, ctx.artifact_dir("trained"), [inputs[0].id], {"loss": final},
                      {"vocab": VOCAB})
        return PhaseResult([PhaseOutput("trained", [(inputs[0].id, "train")])],
                           key_metric=("loss", final))


@register_phase
class ShrinkPhase(BasePhase):
    """Scales the weights; its gate adopts the result only if loss gets no worse than the margin."""

    name = "fixture_shrink"
    config_class = ShrinkConfig
    input_contract = HandoffContract(1, 1)
    output_contract = HandoffContract(1, 1, required_metadata=("vocab",))

    def run(self, inputs, ctx: PhaseContext) -> PhaseResult:
        model = AutoModelForCausalLM.from_pretrained(inputs[0].path)
        before = loss_of(model, batch())
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(ctx.settings.scale)
        after = loss_of(model, batch())
        ctx.log_metrics(0, {"loss_before": before, "loss_after": after})
        adopted = after <= before + ctx.settings.gate.margin  # on_fail: the driver applies it
        save_artifact(model, ctx.artifact_dir("shrunk"), [inputs[0].id], {"loss": after},
                      {"vocab": VOCAB})
        reason = f"loss {before:.4f} -> {after:.4f}"
        return PhaseResult([PhaseOutput("shrunk")], adopted=adopted, reason=reason,
                           key_metric=("loss", after))


NAMES = ("fixture_init", "fixture_train", "fixture_shrink")


def unregister_all() -> None:
    for name in NAMES:
        unregister_phase(name)
