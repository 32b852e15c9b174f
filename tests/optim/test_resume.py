"""Train k, save, load, train k == train 2k, bit for bit on CPU (model + MuGrokfast state)."""
from __future__ import annotations

import io

import torch

from forge.config.optim import CognateOptim
from forge.models import CognateConfig, CognateForCausalLM
from forge.optim import MuGrokfast

CFG = dict(vocab_size=97, d_model=32, n_layers=1, n_heads=2, d_ff=64, window=6, memory_chunk=4)
OPT = CognateOptim(lr=3e-3, grokfast_lambda=0.5, qk_clip_tau=2.0)  # low tau: clip really acts


def _batch(step: int) -> torch.Tensor:
    return torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(step))


def _train(model: CognateForCausalLM, opt: MuGrokfast, steps: range) -> list[float]:
    losses = []
    for step in steps:
        ids = _batch(step)
        loss = model(ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.filter_gradients()
        opt.step()
        opt.qk_clip()
        losses.append(loss.item())
    return losses


def _fresh() -> tuple[CognateForCausalLM, MuGrokfast]:
    torch.manual_seed(0)
    model = CognateForCausalLM(CognateConfig(**CFG)).train()
    return model, MuGrokfast(model, OPT)


def test_resume_is_bit_exact() -> None:
    k = 3
    model, opt = _fresh()
    straight = _train(model, opt, range(2 * k))
    assert sum(opt.last_clipped.values()) >= 0 and opt.steps == 2 * k

    first, opt1 = _fresh()
    _train(first, opt1, range(k))
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "optim": opt1.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    second, opt2 = _fresh()
    second.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["optim"])
    resumed = _train(second, opt2, range(k, 2 * k))

    assert resumed == straight[k:]
    for (name, a), b in zip(model.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    assert opt2.grokfast.mu.keys() == opt.grokfast.mu.keys()
    assert all(torch.equal(opt2.grokfast.mu[n], opt.grokfast.mu[n]) for n in opt.grokfast.mu)


def test_mugrokfast_lowers_the_loss() -> None:
    model, opt = _fresh()
    ids = _batch(0)
    losses = []
    for _ in range(20):
        loss = model(ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.filter_gradients()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
